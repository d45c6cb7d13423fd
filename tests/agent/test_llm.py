"""OpenAILLM against the scripted endpoint: retries, timeouts, error mapping, tolerant JSON."""

from __future__ import annotations

import time

import pytest

from memento_mcp.agent.llm import OpenAILLM, RetryPolicy, backends_from_settings, parse_json_object
from memento_mcp.agent.scripted import Script, ScriptedServer, fail, say, say_json, slow
from memento_mcp.errors import ConfigError, LLMError, LLMRateLimited, LLMTimeout

pytestmark = pytest.mark.anyio
HELLO = [{"role": "user", "content": "hello"}]


async def test_429_is_retried_with_backoff(scripted):
    pair = scripted(
        planner=[fail(429, "slow down"), fail(429, "slow down"), say("ok")],
        retry=RetryPolicy(attempts=4, base_delay_s=0.05),
    )
    started = time.perf_counter()
    reply = await pair.planner.complete(HELLO)
    elapsed = time.perf_counter() - started
    assert reply.content == "ok"
    assert len(pair.script.requests) == 3
    # backoff: 0.05 * 2**0 and 0.05 * 2**1, each jittered down to half at most
    assert elapsed >= (0.05 + 0.1) / 2


async def test_retry_after_header_is_honoured(scripted):
    pair = scripted(
        planner=[fail(429, "wait", retry_after=0.3), say("ok")],
        retry=RetryPolicy(attempts=2, base_delay_s=0.0),
    )
    started = time.perf_counter()
    assert (await pair.planner.complete(HELLO)).content == "ok"
    assert time.perf_counter() - started >= 0.3


async def test_429_until_retries_are_spent_raises_rate_limited(scripted):
    pair = scripted(
        default=fail(429, "slow down"), retry=RetryPolicy(attempts=3, base_delay_s=0.01)
    )
    with pytest.raises(LLMRateLimited, match="429"):
        await pair.planner.complete(HELLO)
    assert len(pair.script.requests) == 3


async def test_server_error_is_retried_then_succeeds(scripted):
    pair = scripted(planner=[fail(503, "overloaded"), say("ok")])
    assert (await pair.planner.complete(HELLO)).content == "ok"


async def test_timeout_raises_llm_timeout(scripted):
    pair = scripted(planner=[slow(2.0, say("too late"))], timeout_s=0.3)
    started = time.perf_counter()
    with pytest.raises(LLMTimeout, match="no reply within 0.3s"):
        await pair.planner.complete(HELLO)
    assert time.perf_counter() - started < 1.5


async def test_bad_request_is_an_llm_error_with_the_message(scripted):
    pair = scripted(planner=[fail(400, "context length exceeded")])
    with pytest.raises(LLMError, match="context length exceeded"):
        await pair.planner.complete(HELLO)


async def test_json_mode_is_requested_and_dropped_when_the_backend_rejects_it(scripted):
    pair = scripted(
        planner=[
            fail(400, "response_format is not supported"),
            say_json({"a": 1}),
            say_json({"b": 2}),
        ]
    )
    reply = await pair.planner.complete(HELLO, json_reply=True)
    assert parse_json_object(reply.content) == {"a": 1}
    first, second = pair.script.requests[0], pair.script.requests[1]
    assert first["response_format"] == {"type": "json_object"}
    assert "response_format" not in second
    await pair.planner.complete(HELLO, json_reply=True)
    assert "response_format" not in pair.script.requests[2]  # remembered


async def test_usage_and_tool_calls_are_read():
    from memento_mcp.agent.scripted import call

    with ScriptedServer(Script({"m": [call("calc_add", a=1, b=2)]})) as server:
        llm = OpenAILLM("m", base_url=server.base_url, api_key="x")
        reply = await llm.complete(
            HELLO,
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "calc_add",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ],
        )
        await llm.aclose()
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("calc_add", '{"a": 1, "b": 2}')]
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.assistant_message()["tool_calls"][0]["function"]["name"] == "calc_add"


def test_no_backend_configured_raises_config_error_with_help():
    class Nothing:
        llm_base_url = llm_api_key = planner_model = executor_model = None

    with pytest.raises(ConfigError, match="MEMENTO_LLM_BASE_URL"):
        backends_from_settings(Nothing())


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"final_answer": "4"}', {"final_answer": "4"}),
        ('```json\n{"plan": []}\n```', {"plan": []}),
        ('Sure! Here it is: {"final_answer": "a {b}"} hope it helps', {"final_answer": "a {b}"}),
        ('{"a": {"b": [1, 2]}} trailing', {"a": {"b": [1, 2]}}),
    ],
)
def test_tolerant_json_parser(text, expected):
    assert parse_json_object(text) == expected


@pytest.mark.parametrize("text", ["", "FINAL ANSWER: 4", '{"a": 1', "[1, 2]"])
def test_tolerant_json_parser_rejects(text):
    with pytest.raises(ValueError):
        parse_json_object(text)
