"""Drives a running batch emulator with the official Anthropic Python SDK (Message Batches).

Usage: python3 anthropic_sdk_check.py BASE_URL [WORK_DIR]

BASE_URL is the emulator's root (`http://127.0.0.1:PORT`, no `/v1`), as `ANTHROPIC_BASE_URL` would be.
Exits non-zero on the first failed check; on success prints one JSON line with the ids it made.
Run by the Rust integration test `python_sdk` (crates/batch-emulator/tests/it/python_sdk.rs).
"""

import json
import sys
import time

import anthropic
from anthropic import Anthropic


def request(custom_id, title):
    return {
        "custom_id": custom_id,
        "params": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 4000,
            "system": [
                {"type": "text", "text": "You write clear lessons in Markdown.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [{"role": "user", "content": f"# Lesson {custom_id[7:]}: {title}"}],
        },
    }


def requests(n):
    return [request(f"lesson_M0-L{i + 1:03}", f"Anthropic check {i + 1}") for i in range(n)]


def wait(client, batch_id):
    deadline = time.monotonic() + 60
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.processing_status}"
        time.sleep(0.05)


def main():
    base_url = sys.argv[1]
    client = Anthropic(base_url=base_url, api_key="sk-ant-python-sdk", max_retries=0)

    # messages.batches.create, retrieve: in_progress, then ended with every request succeeded.
    batch = client.messages.batches.create(requests=requests(3))
    assert batch.type == "message_batch" and batch.id.startswith("msgbatch_"), batch
    assert batch.processing_status == "in_progress", batch
    assert batch.request_counts.processing == 3 and batch.request_counts.succeeded == 0, batch
    assert batch.results_url is None and batch.ended_at is None, batch
    assert batch.expires_at > batch.created_at, batch
    done = wait(client, batch.id)
    counts = done.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 3, 0, 0, 0), done
    assert done.ended_at is not None and done.results_url.endswith(f"/v1/messages/batches/{batch.id}/results"), done

    # messages.batches.results: streamed JSONL, parsed into the SDK's result types.
    results = list(client.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == [f"lesson_M0-L00{i}" for i in (1, 2, 3)], results
    for result in results:
        assert result.result.type == "succeeded", result
        message = result.result.message
        assert message.type == "message" and message.role == "assistant", message
        assert message.model == "claude-sonnet-4-5", message
        assert message.stop_reason == "end_turn", message
        text = message.content[0].text
        assert text.startswith(f"# Lesson {result.custom_id[7:]}: Anthropic check"), text
        assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage
        assert message.usage.cache_read_input_tokens == 0, message.usage
        assert message.usage.service_tier == "batch", message.usage

    # messages.batches.cancel: a longer batch goes canceling, then ends with canceled results.
    long_batch = client.messages.batches.create(requests=requests(40))
    canceling = client.messages.batches.cancel(long_batch.id)
    assert canceling.processing_status == "canceling", canceling
    assert canceling.cancel_initiated_at is not None, canceling
    canceled = wait(client, long_batch.id)
    counts = canceled.request_counts
    assert counts.canceled > 0 and counts.succeeded + counts.canceled == 40, canceled
    kinds = [r.result.type for r in client.messages.batches.results(long_batch.id)]
    assert len(kinds) == 40 and kinds.count("canceled") == counts.canceled, kinds

    # messages.batches.list: most recent first, auto-paginated with limit=1 (after_id/has_more).
    first_page = client.messages.batches.list(limit=1)
    assert [b.id for b in first_page.data] == [long_batch.id], first_page
    assert first_page.has_more and first_page.last_id == long_batch.id, first_page
    every = [b.id for b in client.messages.batches.list(limit=1)]
    assert every == [long_batch.id, batch.id], every

    # messages.create: one message answered at once, at the standard tier, creating no batch.
    message = client.messages.create(**request("lesson_M0-L009", "Direct answer")["params"])
    assert message.type == "message" and message.role == "assistant", message
    assert message.model == "claude-sonnet-4-5" and message.stop_reason == "end_turn", message
    assert message.content[0].text.startswith("# Lesson M0-L009: Direct answer"), message.content
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0, message.usage
    assert message.usage.service_tier == "standard", message.usage
    assert [b.id for b in client.messages.batches.list()] == [long_batch.id, batch.id]
    try:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("max_tokens 0 must be refused")
    except anthropic.BadRequestError as error:
        assert error.body["error"]["type"] == "invalid_request_error", error.body
        assert error.body["error"]["message"].startswith("max_tokens: "), error.body

    # Errors map to the SDK's exception classes.
    try:
        client.messages.batches.create(requests=[request("lesson.M0-L001", "Dots are not allowed")])
        raise AssertionError("a custom_id with a dot must be refused")
    except anthropic.BadRequestError as error:
        assert error.status_code == 400 and "custom_id" in str(error), error
        assert error.body["error"]["type"] == "invalid_request_error", error.body
    try:
        client.messages.batches.retrieve("msgbatch_does_not_exist")
        raise AssertionError("an unknown batch must be 404")
    except anthropic.NotFoundError as error:
        assert error.status_code == 404, error

    # messages.batches.delete: the ended batch is gone afterwards.
    deleted = client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted", deleted
    assert [b.id for b in client.messages.batches.list()] == [long_batch.id]

    print(json.dumps({"ok": True, "sdk": anthropic.__version__, "batch": batch.id, "canceled": long_batch.id}))


if __name__ == "__main__":
    main()
