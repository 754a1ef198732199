"""Temporal's ``custom_converter`` and ``pydantic_converter`` samples, as they are written:
``Payload`` from ``perdure.api.common.v1``, ``converter.default()`` replaced in part, and a
client copied with another data converter through ``client.config()``."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import datetime, timedelta
from ipaddress import IPv4Address
from typing import Any

from pydantic import BaseModel

import perdure.converter
from perdure import Worker, activity, workflow
from perdure.api.common.v1 import Payload
from perdure.client import Client
from perdure.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
)
from perdure.testing import WorkflowEnvironment

with workflow.unsafe.imports_passed_through():
    from perdure.contrib.pydantic import pydantic_data_converter


# -- custom_converter/shared.py -----------------------------------------------------------------
class GreetingInput:
    def __init__(self, name: str) -> None:
        self.name = name


class GreetingOutput:
    def __init__(self, result: str) -> None:
        self.result = result


class GreetingEncodingPayloadConverter(EncodingPayloadConverter):
    @property
    def encoding(self) -> str:
        return "text/my-greeting-encoding"

    def to_payload(self, value: Any) -> Payload | None:
        if isinstance(value, GreetingInput):
            return Payload(
                metadata={"encoding": self.encoding.encode(), "is_input": b"true"},
                data=value.name.encode(),
            )
        elif isinstance(value, GreetingOutput):
            return Payload(
                metadata={"encoding": self.encoding.encode()},
                data=value.result.encode(),
            )
        else:
            return None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        if payload.metadata.get("is_input") == b"true":
            assert not type_hint or type_hint is GreetingInput
            return GreetingInput(payload.data.decode())
        else:
            assert not type_hint or type_hint is GreetingOutput
            return GreetingOutput(payload.data.decode())


class GreetingPayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        # Just add ours as first before the defaults
        super().__init__(
            GreetingEncodingPayloadConverter(),
            *DefaultPayloadConverter.default_encoding_payload_converters,
        )


greeting_data_converter = dataclasses.replace(
    perdure.converter.default(),
    payload_converter_class=GreetingPayloadConverter,
)


# -- custom_converter/workflow.py ---------------------------------------------------------------
@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, input: GreetingInput) -> GreetingOutput:
        return GreetingOutput(f"Hello, {input.name}")


# -- pydantic_converter/worker.py ---------------------------------------------------------------
class MyPydanticModel(BaseModel):
    some_ip: IPv4Address
    some_date: datetime


@activity.defn
async def my_activity(models: list[MyPydanticModel]) -> list[MyPydanticModel]:
    activity.logger.info("Got models in activity: %s", models)
    return models


@workflow.defn
class MyWorkflow:
    @workflow.run
    async def run(self, models: list[MyPydanticModel]) -> list[MyPydanticModel]:
        workflow.logger.info("Got models in workflow: %s", models)
        return await workflow.execute_activity(
            my_activity, models, start_to_close_timeout=timedelta(minutes=1)
        )


# -- the samples' tests -------------------------------------------------------------------------
async def test_workflow_with_custom_converter(env: WorkflowEnvironment) -> None:
    client = env.client
    # Replace data converter in client
    new_config = client.config()
    new_config["data_converter"] = greeting_data_converter
    client = Client(**new_config)
    task_queue = "tq-custom-converter"
    async with Worker(client, task_queue=task_queue, workflows=[GreetingWorkflow]):
        result = await client.execute_workflow(
            GreetingWorkflow.run, GreetingInput("Temporal"), id="wf-custom", task_queue=task_queue
        )
    assert isinstance(result, GreetingOutput)
    assert result.result == "Hello, Temporal"
    # Stored in the sample's own encoding: the input payload as its converter wrote it.
    history = await client.get_workflow_handle("wf-custom").fetch_history()
    [started] = [e for e in history.events if e.event_type == "WorkflowExecutionStarted"]
    [stored] = started.attributes["input"]
    assert stored.metadata == {"encoding": b"text/my-greeting-encoding", "is_input": b"true"}
    assert stored.data == b"Temporal"


async def test_workflow_with_pydantic_model(env: WorkflowEnvironment) -> None:
    client = env.client
    # Replace data converter in client
    new_config = client.config()
    new_config["data_converter"] = pydantic_data_converter
    client = Client(**new_config)
    task_queue_name = "tq-pydantic"

    orig_models = [
        MyPydanticModel(some_ip=IPv4Address("127.0.0.1"), some_date=datetime(2000, 1, 2, 3, 4, 5)),
        MyPydanticModel(some_ip=IPv4Address("127.0.0.2"), some_date=datetime(2001, 2, 3, 4, 5, 6)),
    ]

    async with Worker(
        client, task_queue=task_queue_name, workflows=[MyWorkflow], activities=[my_activity]
    ):
        result = await client.execute_workflow(
            MyWorkflow.run, orig_models, id="wf-pydantic", task_queue=task_queue_name
        )
    assert orig_models == result


def test_payload_is_the_converters_payload() -> None:
    assert Payload is perdure.converter.Payload
    assert perdure.converter.default() is perdure.converter.DataConverter.default


def test_config_holds_every_keyword_of_the_constructor(env: WorkflowEnvironment) -> None:
    keywords = {
        name
        for name, p in inspect.signature(Client).parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    assert set(env.client.config()) == keywords


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return text


async def test_a_copy_shares_the_store_and_closing_it_leaves_the_store_open(
    env: WorkflowEnvironment,
) -> None:
    config = env.client.config()
    config["namespace"] = "other"
    copy = Client(**config)
    assert copy.store is env.client.store
    assert (copy.namespace, env.client.namespace) == ("other", "default")
    async with Worker(copy, task_queue="q", workflows=[Echo]):
        assert await copy.execute_workflow(Echo.run, "copy", id="e", task_queue="q") == "copy"
    await copy.close()
    # The store is still open: the original starts and finishes a workflow on it.
    async with Worker(env.client, task_queue="q", workflows=[Echo]):
        assert await env.client.execute_workflow(Echo.run, "o", id="e", task_queue="q") == "o"
