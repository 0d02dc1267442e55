"""Chat through a consumer router with the official `openai` package, as any user's program would.

Reads ROUTER_BASE_URL (`http://host:port/v1`), ROUTER_AUTH (`user:password`), SESSION_ID and PROMPT from
the environment; makes one streamed chat, one non-streamed chat and one embeddings call; prints one JSON
object with what it received, for tests/tests/openai_client.rs to check.
"""

import base64
import json
import os

import openai

auth = base64.b64encode(os.environ["ROUTER_AUTH"].encode()).decode()
client = openai.OpenAI(
    base_url=os.environ["ROUTER_BASE_URL"],
    api_key="unused",
    # The router authenticates with HTTP Basic (proxy.conf / .cookie) and picks the session from the
    # reference's `session_id` header.
    default_headers={"Authorization": f"Basic {auth}", "session_id": os.environ["SESSION_ID"]},
    max_retries=0,
    timeout=60,
)
prompt = os.environ["PROMPT"]
messages = [{"role": "user", "content": prompt}]

streamed = []
chunk_count = 0
finish_reason = None
for chunk in client.chat.completions.create(model="e2e-model", messages=messages, stream=True):
    chunk_count += 1
    if chunk.choices:
        choice = chunk.choices[0]
        if choice.delta and choice.delta.content:
            streamed.append(choice.delta.content)
        if choice.finish_reason:
            finish_reason = choice.finish_reason

raw = client.chat.completions.with_raw_response.create(
    model="e2e-model", messages=messages, extra_headers={"X-Request-Id": "py-client-1"}
)
completion = raw.parse()
embeddings = client.embeddings.create(
    model="e2e-model", input=["alpha beta", "gamma"], encoding_format="float"
)

print(
    json.dumps(
        {
            "openai_version": openai.__version__,
            "stream_text": "".join(streamed),
            "stream_chunks": chunk_count,
            "stream_finish_reason": finish_reason,
            "text": completion.choices[0].message.content,
            "finish_reason": completion.choices[0].finish_reason,
            "usage": completion.usage.model_dump() if completion.usage else None,
            "request_id": raw.headers.get("x-request-id"),
            "embeddings": [item.embedding for item in embeddings.data],
        }
    )
)
