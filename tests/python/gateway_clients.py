"""The OpenAI gateway as any user's program sees it: the official `openai` package and LangChain's
`ChatOpenAI`, given nothing but a base URL, an API key and a model name.

Reads GATEWAY_BASE_URL (`http://host:port/v1`), GATEWAY_API_KEY, MODEL and PROMPT from the environment;
prints one JSON object with what each call received, for tests/tests/gateway_clients.rs to check.
"""

import json
import os

import openai
from langchain_openai import ChatOpenAI

base_url = os.environ["GATEWAY_BASE_URL"]
api_key = os.environ["GATEWAY_API_KEY"]
model = os.environ["MODEL"]
prompt = os.environ["PROMPT"]
messages = [{"role": "user", "content": prompt}]

client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)

models = [m.id for m in client.models.list()]
one = client.models.retrieve(model)

streamed, chunks, finish_reason, stream_usage = [], 0, None, None
for chunk in client.chat.completions.create(
    model=model, messages=messages, stream=True, stream_options={"include_usage": True}
):
    chunks += 1
    if chunk.usage:
        stream_usage = chunk.usage.model_dump()
    if chunk.choices:
        choice = chunk.choices[0]
        if choice.delta and choice.delta.content:
            streamed.append(choice.delta.content)
        if choice.finish_reason:
            finish_reason = choice.finish_reason

completion = client.chat.completions.create(model=model, messages=messages)
legacy = client.completions.create(model=model, prompt=prompt, max_tokens=32)
legacy_stream = "".join(
    c.choices[0].text for c in client.completions.create(model=model, prompt=prompt, stream=True) if c.choices
)
embeddings = client.embeddings.create(model=model, input=["alpha beta", "gamma"], encoding_format="float")

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    unknown = None
except openai.NotFoundError as e:
    unknown = {"status": e.status_code, "code": e.code}

try:
    openai.OpenAI(base_url=base_url, api_key="sk-mor-wrong", max_retries=0).models.list()
    bad_key = None
except openai.AuthenticationError as e:
    bad_key = {"status": e.status_code, "code": e.code}

llm = ChatOpenAI(base_url=base_url, api_key=api_key, model=model, max_retries=0, timeout=120)
langchain_pieces = [piece.content for piece in llm.stream(prompt)]

print(
    json.dumps(
        {
            "models": models,
            "model": {"id": one.id, "object": one.object, "owned_by": one.owned_by, "extra": one.model_extra},
            "stream_text": "".join(streamed),
            "stream_chunks": chunks,
            "stream_finish_reason": finish_reason,
            "stream_usage": stream_usage,
            "text": completion.choices[0].message.content,
            "usage": completion.usage.model_dump() if completion.usage else None,
            "completion_object": legacy.object,
            "completion_text": legacy.choices[0].text,
            "completion_stream_text": legacy_stream,
            "embeddings": [item.embedding for item in embeddings.data],
            "unknown_model": unknown,
            "bad_key": bad_key,
            "langchain_text": "".join(langchain_pieces),
            "langchain_pieces": len(langchain_pieces),
        }
    )
)
