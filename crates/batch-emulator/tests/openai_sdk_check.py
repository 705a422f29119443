"""Drives a running batch emulator with the official OpenAI Python SDK.

Usage: python3 openai_sdk_check.py BASE_URL WORK_DIR

Exits non-zero on the first failed check; on success prints one JSON line with the ids it made.
Run by the Rust integration test `python_sdk` (crates/batch-emulator/tests/it/python_sdk.rs).
"""

import json
import os
import sys
import time

import openai
from openai import OpenAI

TERMINAL = ("completed", "failed", "expired", "cancelled")


def line(custom_id, title):
    return json.dumps(
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"# Lesson {custom_id[7:]}: {title}"}],
            },
        }
    )


def write(path, n):
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            out.write(line(f"lesson_M0-L{i + 1:03}", f"Python check {i + 1}") + "\n")
    return os.path.getsize(path)


def wait(client, batch_id):
    deadline = time.monotonic() + 60
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.status}"
        time.sleep(0.05)


def main():
    base_url, work_dir = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="sk-python-sdk", max_retries=0)

    # files.create(purpose="batch"), files.retrieve, files.list
    path = os.path.join(work_dir, "requests.jsonl")
    size = write(path, 3)
    with open(path, "rb") as handle:
        uploaded = client.files.create(file=handle, purpose="batch")
    assert uploaded.object == "file", uploaded
    assert uploaded.purpose == "batch" and uploaded.bytes == size, uploaded
    assert uploaded.filename == "requests.jsonl", uploaded
    assert client.files.retrieve(uploaded.id).id == uploaded.id
    assert uploaded.id in [f.id for f in client.files.list()]

    # files.create(file=b"..."): the SDK names a raw-bytes part `upload`, and it is the
    # content that counts. Curator and parasail's openai-batch upload this way.
    with open(path, "rb") as handle:
        raw = client.files.create(file=handle.read(), purpose="batch")
    assert raw.filename == "upload" and raw.bytes == size and raw.purpose == "batch", raw
    try:
        client.files.create(file=b"custom_id,title\nlesson_M0-L001,Intro\n", purpose="batch")
        raise AssertionError("a body that is not JSONL must be refused")
    except openai.BadRequestError as error:
        assert error.code == "invalid_file_format" and error.param == "file", error

    # batches.create (from the raw-bytes upload), batches.retrieve
    batch = client.batches.create(
        input_file_id=raw.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run_id": "python-sdk"},
    )
    assert batch.status == "validating", batch
    assert batch.metadata == {"run_id": "python-sdk"}, batch
    done = wait(client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts.total == 3 and done.request_counts.completed == 3, done
    assert done.output_file_id and done.error_file_id is None, done
    assert done.usage.output_tokens > 0, done

    # files.content: the SDK sends Accept: application/binary and gets raw JSONL back.
    content = client.files.content(done.output_file_id)
    lines = [json.loads(text) for text in content.text.splitlines()]
    assert sorted(l["custom_id"] for l in lines) == [f"lesson_M0-L00{i}" for i in (1, 2, 3)], lines
    for result in lines:
        assert result["response"]["status_code"] == 200, result
        answer = result["response"]["body"]["choices"][0]["message"]["content"]
        assert answer.startswith("# Lesson M0-L00"), answer

    # batches.cancel: a longer batch goes cancelling, then cancelled with partial results.
    long_path = os.path.join(work_dir, "long.jsonl")
    write(long_path, 40)
    with open(long_path, "rb") as handle:
        long_file = client.files.create(file=handle, purpose="batch")
    long_batch = client.batches.create(
        input_file_id=long_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelling = client.batches.cancel(long_batch.id)
    assert cancelling.status == "cancelling", cancelling
    cancelled = wait(client, long_batch.id)
    assert cancelled.status == "cancelled", cancelled

    # batches.list: newest first, auto-paginated with limit=1 (after/has_more).
    first_page = client.batches.list(limit=1)
    assert [b.id for b in first_page.data] == [long_batch.id], first_page
    assert first_page.has_more
    every = [b.id for b in client.batches.list(limit=1)]
    assert every == [long_batch.id, batch.id], every

    # Errors map to the SDK's exception classes.
    try:
        client.batches.cancel(batch.id)
        raise AssertionError("cancelling a completed batch must fail")
    except openai.ConflictError as error:
        assert error.status_code == 409
    try:
        client.batches.retrieve("batch_does_not_exist")
        raise AssertionError("an unknown batch must be 404")
    except openai.NotFoundError as error:
        assert error.response.headers.get("x-request-id"), "every answer has a request id"
    try:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/invalid/endpoint", completion_window="24h"
        )
        raise AssertionError("a bad endpoint must be 400")
    except openai.BadRequestError as error:
        assert error.code == "invalid_value" and error.param == "endpoint", error

    # files.delete
    deleted = client.files.delete(uploaded.id)
    assert deleted.deleted and deleted.id == uploaded.id, deleted

    print(json.dumps({"ok": True, "sdk": openai.__version__, "batch": batch.id, "cancelled": long_batch.id}))


if __name__ == "__main__":
    main()
