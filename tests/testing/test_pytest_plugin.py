"""The pytest plugin as a user meets it: its fixtures in a test file of theirs, and the replay
of every workflow a test closed."""

from __future__ import annotations

import pytest

USER_TESTS = '''
import pytest
from perdure import activity, workflow

@activity.defn
async def double(n: int) -> int:
    return 2 * n

@workflow.defn
class Steady:
    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.sleep(3600)
        return await workflow.execute_activity(
            double, n, start_to_close_timeout=__import__("datetime").timedelta(seconds=5)
        )

RUNS = []

@workflow.defn
class Drifting:
    """Takes a timer on its first run in this process only: replay will not match."""
    @workflow.run
    async def run(self) -> int:
        RUNS.append(1)
        if len(RUNS) == 1:
            await workflow.sleep(60)
        return 1

@pytest.mark.asyncio
async def test_steady(perdure_client, perdure_worker, perdure_env):
    await perdure_worker(workflows=[Steady], activities=[double])
    start = await perdure_env.get_current_time()
    assert await perdure_client.execute_workflow(Steady.run, 21, id="s", task_queue="test") == 42
    assert (await perdure_env.get_current_time() - start).total_seconds() >= 3600

@pytest.mark.asyncio
async def test_drifting(perdure_client, perdure_worker):
    await perdure_worker(workflows=[Drifting])
    assert await perdure_client.execute_workflow(Drifting.run, id="d", task_queue="test") == 1

@pytest.mark.asyncio
@pytest.mark.perdure_no_replay
async def test_drifting_unchecked(perdure_client, perdure_worker):
    RUNS.clear()
    await perdure_worker(workflows=[Drifting])
    assert await perdure_client.execute_workflow(Drifting.run, id="d", task_queue="test") == 1
'''


@pytest.fixture
def user_tests(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_user=USER_TESTS)
    return pytester


def test_replay_fails_a_test_whose_workflow_does_not_replay(user_tests: pytest.Pytester) -> None:
    result = user_tests.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_drifting*",
            "*Workflows this test closed do not replay*",
            "*Drifting d (run *) does not replay: NondeterminismError*",
        ]
    )


def test_replay_can_be_turned_off_for_the_run(user_tests: pytest.Pytester) -> None:
    result = user_tests.runpytest_subprocess("-p", "no:randomly", "--no-perdure-replay")
    result.assert_outcomes(passed=3)


def test_replay_can_be_turned_off_in_the_configuration(user_tests: pytest.Pytester) -> None:
    user_tests.makeini("[pytest]\nperdure_replay = false\n")
    result = user_tests.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3)
