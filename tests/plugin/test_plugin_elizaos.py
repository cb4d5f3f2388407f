"""The plugin inside the real ``elizaos`` Python runtime (verified with elizaos 2.0.0a5; skipped without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.embedded import SPEED
from tests.optional import ELIZAOS_VERSION, require_elizaos

elizaos = require_elizaos(ELIZAOS_VERSION)  # skipped without it; under CI=true, a failure

ROOM = "22222222-2222-2222-2222-222222222222"


async def test_registers_and_delivers_a_paid_video(tmp_path: Path) -> None:
    from elizaos.types import Content, Memory

    from imagine_agent.plugin import elizaos_plugin, register

    runtime = elizaos.AgentRuntime(
        character=elizaos.Character(name="VideoBot", bio="Makes short videos."),
        settings={"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_SANDBOX_SPEED": SPEED},
    )
    await runtime.initialize()
    await register(runtime)  # picks the elizaos adapter for an elizaos runtime
    try:
        assert isinstance(elizaos_plugin(), elizaos.Plugin)
        assert "imagine_video" in runtime.get_registered_service_types()
        names = {a.name for a in runtime.actions}
        assert {"GENERATE_VIDEO", "QUOTE_VIDEO", "VIDEO_STATUS"} <= names

        message = Memory(
            id="11111111-1111-1111-1111-111111111111",
            room_id=ROOM,
            content=Content(text="Make a 2 second video of a lighthouse in fog"),
        )
        state = await runtime.compose_state(message)
        assert "Imagine video budget: spent 0.00 USDC" in state.text
        generate = next(a for a in runtime.actions if a.name == "GENERATE_VIDEO")
        assert await generate.validate(runtime, message, state)

        replies: list[Any] = []

        async def callback(content: Any) -> list[Any]:
            replies.append(content)
            return []

        response = Memory(room_id=ROOM, content=Content(text="On it.", actions=["GENERATE_VIDEO"]))
        await runtime.process_actions(message, [response], state, callback)

        [result] = runtime.get_action_results(message.id)
        assert result.success, [r.text for r in replies]
        assert result.data["status"] == "completed" and Path(result.data["videoPath"]).is_file()
        assert isinstance(replies[-1], Content) and "Your video is ready" in replies[-1].text
        assert replies[-1].attachments[0].content_type == "video/mp4"
        assert any(r.text.startswith("Rendering…") for r in replies)

        ran = await runtime.evaluate(message, state, did_respond=True, callback=callback, responses=[response])
        assert [e.name for e in ran or []] == ["IMAGINE_RECORD_DELIVERY"]
        after = await runtime.compose_state(message, skip_cache=True)
        assert "spent 0.25 USDC" in after.text and "delivered" in after.text
        assert after.data.providers["IMAGINE_BUDGET"].data["spent"] == "250000"

        service = runtime.get_service("imagine_video").service
        assert [r.amount for r in service.receipts()] == [250_000]
    finally:
        await runtime.stop()
