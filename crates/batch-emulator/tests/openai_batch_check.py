"""Drives a running batch emulator with parasail's `openai-batch` (PyPI), unmodified.

Usage: python3 openai_batch_check.py BASE_URL WORK_DIR

The library is pointed at the emulator with its own `Provider(base_url=..., api_key=...)`;
it uploads with the official SDK's raw-bytes call (`files.create(file=b"...")`), so the
upload's name is `upload`. Exits non-zero on the first failed check; on success prints, as
its last line, one JSON object with the batch id.
Run by the Rust integration test `python_sdk` (crates/batch-emulator/tests/it/python_sdk.rs).
"""

import json
import os
import sys
from importlib.metadata import version

from openai_batch import Batch
from openai_batch.providers import Provider


def main():
    base_url, work_dir = sys.argv[1], sys.argv[2]
    provider = Provider(base_url=base_url, api_key="sk-openai-batch")
    input_path = os.path.join(work_dir, "openai-batch-input.jsonl")
    with open(input_path, "w", encoding="utf-8") as out:
        for i in range(1, 4):
            request = {
                "custom_id": f"lesson_M0-L00{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": f"# Lesson M0-L00{i}: Third-party check {i}"}],
                },
            }
            out.write(json.dumps(request) + "\n")
    output_path = os.path.join(work_dir, "openai-batch-output.jsonl")
    error_path = os.path.join(work_dir, "openai-batch-errors.jsonl")

    # Submit, poll until done, download: the library's one-call workflow.
    with Batch(
        submission_input_file=input_path,
        output_file=output_path,
        error_file=error_path,
        provider=provider,
    ) as batch:
        done, output, errors = batch.submit_wait_download(interval=0.05, metadata={"run_id": "openai-batch"})
    assert done.status == "completed", done
    assert done.request_counts.total == 3 and done.request_counts.completed == 3, done
    assert output == output_path and errors is None, (output, errors)
    with open(output_path, encoding="utf-8") as results:
        lines = [json.loads(line) for line in results if line.strip()]
    assert sorted(line["custom_id"] for line in lines) == [f"lesson_M0-L00{i}" for i in (1, 2, 3)], lines
    for line in lines:
        answer = line["response"]["body"]["choices"][0]["message"]["content"]
        assert answer.startswith(f"# Lesson {line['custom_id'][7:]}: Third-party check"), answer

    # Resuming by batch id: status and download again.
    resumed = Batch(batch_id=done.id, output_file=output_path + ".again", provider=provider)
    assert resumed.status().status == "completed"
    again, _ = resumed.download()
    with open(again, encoding="utf-8") as results:
        assert len([line for line in results if line.strip()]) == 3

    print(json.dumps({"ok": True, "openai_batch": version("openai-batch"), "batch": done.id}))


if __name__ == "__main__":
    main()
