"""The Markdown prompts load as package data and render with every placeholder filled."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from imagine_agent.agent import system_prompt
from imagine_agent.config import Settings
from imagine_agent.prompts import PROMPT_NAMES, load_prompt, render_prompt
from imagine_agent.service import ImagineService
from imagine_agent.tools import ImagineContext


def test_every_prompt_is_a_markdown_resource() -> None:
    for name in PROMPT_NAMES:
        resource = files("imagine_agent.prompts").joinpath(f"{name}.md")
        assert resource.is_file()
        assert load_prompt(name) == resource.read_text(encoding="utf-8")
    with pytest.raises(KeyError):
        load_prompt("../config")


def test_missing_placeholder_is_an_error() -> None:
    with pytest.raises(KeyError, match="policy"):
        render_prompt("autoclank", address="0xabc")


def test_enhancement_guide_covers_the_elements() -> None:
    guide = load_prompt("enhance").lower()
    for element in ("subject", "action", "setting", "camera", "lighting", "style", "duration"):
        assert f"**{element}**" in guide or f"**{element} fit**" in guide


@pytest.mark.parametrize("policy", ["never", "ask", "agent", "always"])
def test_system_prompt_renders_policy_and_threshold(policy: str) -> None:
    text = system_prompt(settings=Settings(auto_clank=policy, approval_threshold="2"))  # type: ignore[arg-type]
    assert f"**{policy}**" in text
    assert "2.000000 USDC" in text
    assert not re.search(r"\$[a-z_]+", text), "an unfilled placeholder"
    for tool in ("quote_video", "generate_video", "wait_for_video", "video_status", "budget_status"):
        assert tool in text
    assert "creator" in text and "trading fees" in text


def test_system_prompt_from_a_context(service: ImagineService) -> None:
    text = system_prompt(ImagineContext(service=service, auto_clank="always"))
    assert "**always**" in text
    assert service.wallet.address in text
    assert "sandbox" in text.lower()
