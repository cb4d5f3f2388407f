"""Downloads of one task at the same time, and file-system errors: both end well or as a ``DownloadError``."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from imagine_agent.client import ImagineClient, _Writer
from imagine_agent.errors import DownloadError
from imagine_agent.flows import Fetch

pytestmark = pytest.mark.e2e


def test_two_interleaved_writers_of_one_file_both_finish(tmp_path: Path) -> None:
    """The steps two concurrent downloads of one task take, in the order that broke a shared ``.part`` file."""
    fetch = Fetch("http://files.test/v.mp4", tmp_path / "task.mp4", 1 << 20, "video")
    first, second = _Writer(fetch), _Writer(fetch)
    first.write(b"a" * 1000)
    second.write(b"a" * 1000)
    assert first.finish() == fetch.path
    assert second.finish() == fetch.path
    assert fetch.path.read_bytes() == b"a" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task.mp4"]


def test_concurrent_sync_downloads_of_one_task_all_succeed(imagine_client: ImagineClient, tmp_path: Path) -> None:
    job = imagine_client.create("a heron lifting off a pond", duration=2)
    status = job.wait()
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def download() -> None:
        start.wait()
        try:
            results.append(imagine_client.download(status, tmp_path / "out", name=job.task_id).video.stat().st_size)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4 and len(set(results)) == 1 and results[0] > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{job.task_id}.mp4", f"{job.task_id}.png"]


async def test_concurrent_async_downloads_of_one_task_all_succeed(async_imagine_client, tmp_path: Path) -> None:
    job = await async_imagine_client.create("a heron landing on a pond", duration=2)
    status = await job.wait()
    files = await asyncio.gather(
        *(async_imagine_client.download(status, tmp_path / "out", name=job.task_id) for _ in range(4))
    )
    assert len({f.video.stat().st_size for f in files}) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{job.task_id}.mp4", f"{job.task_id}.png"]


def test_unwritable_output_is_a_download_error(imagine_client: ImagineClient, tmp_path: Path) -> None:
    job = imagine_client.create("a heron asleep on one leg", duration=2)
    status = job.wait()
    blocker = tmp_path / "videos"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(DownloadError, match=r"cannot create the video file .*videos.*check the output directory"):
        imagine_client.download(status, blocker, name=job.task_id)
    with pytest.raises(DownloadError, match="cannot create"):
        imagine_client.download(status, blocker / "sub", name=job.task_id)
