"""The straightforward processor lesson-writer is measured against.

Reads a Batch API output file line by line, json.loads each line, takes
choices[0].message.content and writes it to <out>/<code>.md. No cleanup, no
atomic writes, no checks: the floor a Python script would start from.

Usage: python3 python_baseline.py OUTPUT.jsonl OUT_DIR [--no-write]
With --no-write it only parses, to time json.loads apart from file creation.
"""

import json
import os
import sys


def main() -> None:
    source, out_dir = sys.argv[1], sys.argv[2]
    write = "--no-write" not in sys.argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    with open(source, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            result = json.loads(line)
            custom_id = result["custom_id"]
            body = (result.get("response") or {}).get("body") or {}
            choices = body.get("choices") or []
            if not choices:
                continue
            content = choices[0]["message"].get("content")
            if not content:
                continue
            name = custom_id.removeprefix("lesson_") + ".md"
            if not write:
                continue
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as lesson:
                lesson.write(content)


if __name__ == "__main__":
    main()
