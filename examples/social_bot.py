"""An autonomous social bot: read video requests from an inbox, buy what the budget allows, post the results.

    python examples/social_bot.py                                  # demo inbox, embedded sandbox
    python examples/social_bot.py --inbox in.jsonl --outbox out.jsonl --daily-budget 2 --follow
    IMAGINE_PRIVATE_KEY=0x… python examples/social_bot.py --base-url http://127.0.0.1:8402 …

Inbox lines: ``{"id": "r1", "from": "@ana", "text": "a fox in fresh snow", "duration": 4}``.
Outbox lines (the "posts"): ``{"requestId", "to", "caption", "videoPath", "videoUrl", "taskId", "paid"}``.

Safe to kill at any moment (even ``kill -9``) and start again: a request is posted exactly once (the
outbox is checked before posting), and paid at most once, because the bot writes down what it decided
to buy *before* paying and then asks the service for exactly that request again; the service finds
the journaled payment and follows its job instead of paying twice. The operator's caps and the kill
switch (``imagine-agent budget --freeze``) are enforced by the service; ``--daily-budget`` is the bot's
own: it caps what *this* bot spent in the last 24 h (counted from its outbox and its open decisions),
whatever else the data dir paid. The bot stops cleanly (exit 0) when a budget says no, and with exit 4
when Imagine cannot be reached (run it again: it resumes from its journal). Its banner says which API
it pays (the embedded sandbox with a throwaway wallet, a loopback sandbox or a real API with your key),
which books record it, and what persists between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from imagine_agent.config import Settings
from imagine_agent.errors import (
    ApprovalDeniedError,
    AwaitingApprovalError,
    BudgetExceededError,
    DownloadError,
    GenerationFailedError,
    ImagineConnectionError,
    ImagineError,
    ImagineStatusError,
    InvalidRequestError,
    PaymentStateUnknownError,
    ProtocolError,
    TaskNotFoundError,
    WalletFrozenError,
)
from imagine_agent.money import format_usdc
from imagine_agent.service import SANDBOX_NOTICE, ImagineService

DEMO_INBOX = [
    {"id": "demo-1", "from": "@ana", "text": "a red fox trotting through fresh snow at dawn", "duration": 2},
    {"id": "demo-2", "from": "@ben", "text": "a paper boat riding a rain gutter stream", "duration": 2},
    {"id": "demo-3", "from": "@cy", "text": "neon koi fish swimming through a night market", "duration": 2},
]
MAX_SECONDS = 8.0
DAY = 24 * 3600


class Stop(Exception):
    """A clean stop: the budget or the kill switch said no, or the operator asked the bot to stop."""


# ------------------------------------------------------------------------------------------ files


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line; a line torn by a crash mid-write is ignored."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one line durably (fsync), starting a fresh line if a crash left a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


class BotState:
    """The bot's own record of each request (deciding, rendering, posted, skipped), saved atomically."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.requests: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            self.requests = json.loads(path.read_text(encoding="utf-8")).get("requests", {})

    def get(self, request_id: str) -> dict[str, Any]:
        return self.requests.get(request_id, {})

    def set(self, request_id: str, **fields: Any) -> None:
        self.requests[request_id] = {**self.get(request_id), **fields}
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({"requests": self.requests}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


# ------------------------------------------------------------------------------------------- the bot


def log(text: str) -> None:
    print(f"[social-bot] {text}", file=sys.stderr, flush=True)


def _atomic(row: dict[str, Any]) -> int:
    """What one post paid, in atomic USDC: ``amount``, or an older row's ``paid`` text ("0.250000 USDC")."""
    if isinstance(row.get("amount"), str) and row["amount"].isdigit():
        return int(row["amount"])
    paid = str(row.get("paid") or "").split(" ")[0]
    try:
        return int(Decimal(paid) * 1_000_000) if paid else 0
    except ArithmeticError:
        return 0


class SocialBot:
    def __init__(
        self,
        service: ImagineService,
        inbox: Path,
        outbox: Path,
        state: BotState,
        videos: Path,
        daily_budget: int | None = None,
    ) -> None:
        self.service, self.inbox, self.outbox, self.state, self.videos = service, inbox, outbox, state, videos
        self.daily_budget = daily_budget  # atomic USDC this bot may spend per 24 h; None: only the operator's caps
        self.stopping = False
        self.posted = {row.get("requestId") for row in read_jsonl(outbox)}

    def spent_today(self, now: float | None = None) -> int:
        """What THIS bot spent in the last 24 h: its posts, plus what it decided to buy and may have paid."""
        since = (time.time() if now is None else now) - DAY
        posted = sum(
            _atomic(row)
            for row in read_jsonl(self.outbox)
            if isinstance(row.get("postedAt"), int | float) and row["postedAt"] >= since
        )
        open_ = sum(
            int(r.get("price") or 0) for r in self.state.requests.values() if r.get("status") in ("paying", "rendering")
        )  # maybe paid: counted (never overspend)
        return posted + open_

    def run(self, follow: bool = False, poll: float = 2.0) -> str | None:
        """Work through the inbox (and keep watching it with ``follow``); returns why it stopped early."""
        while True:
            try:
                for request in read_jsonl(self.inbox):
                    if self.stopping:
                        raise Stop("asked to stop")
                    self.handle(request)
            except Stop as stop:
                log(f"stopping: {stop}")
                return str(stop)
            except (ImagineConnectionError, ImagineStatusError, ProtocolError, DownloadError) as exc:
                log(f"trouble reaching Imagine: {exc}")  # nothing is lost: the next pass resumes from the journal
                if not follow:
                    return f"trouble reaching Imagine: {type(exc).__name__}"
            if not follow:
                return None
            time.sleep(poll)

    def handle(self, request: dict[str, Any]) -> None:
        request_id = str(request.get("id", ""))
        record = self.state.get(request_id)
        if not request_id or request_id in self.posted or record.get("status") in ("skipped", "failed"):
            return
        if "taskId" not in record:
            if "prompt" not in record:  # nothing decided yet: decide, and write the decision down before paying
                decision = self.decide(request)
                if decision is None:
                    return
                self.state.set(request_id, status="paying", **decision)
                record = self.state.get(request_id)
            task_id = self.pay(request_id, record["prompt"], record["duration"])
            if task_id is None:
                return  # waits for the operator's decision; the next pass asks for the same request again
            self.state.set(request_id, status="rendering", taskId=task_id)
            record = self.state.get(request_id)
        self.finish(request, record)

    def decide(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """What to make: the requested length if the budget allows it, else the longest shorter one that fits."""
        if self.service.budget().totals.frozen:
            raise Stop("the kill switch is on")
        request_id, prompt = str(request["id"]), str(request.get("text", ""))
        wanted = request.get("duration", 4)
        duration = min(float(wanted), MAX_SECONDS) if isinstance(wanted, int | float) else 4.0
        refusal = None
        while duration >= 1:
            try:
                quote = self.service.quote(prompt, duration=duration)
            except InvalidRequestError as exc:
                log(f"{request_id}: skipped, {exc}")
                self.state.set(request_id, status="skipped", reason=str(exc))
                return None
            mine = self.daily_budget - self.spent_today() if self.daily_budget is not None else None
            if quote.allowed and mine is not None and quote.quote.amount > mine:
                refusal = (
                    f"{format_usdc(quote.quote.amount)} is more than the {format_usdc(max(0, mine))} left "
                    "of the bot's daily budget"
                )
            elif quote.allowed:
                log(f"{request_id}: buying {duration:g}s of {prompt!r} for {format_usdc(quote.quote.amount)}")
                return {"prompt": prompt, "duration": duration, "price": quote.quote.amount}
            else:
                refusal = quote.refusal
            duration = float(int(duration // 2))
        raise Stop(f"the budget is spent for now ({refusal}); the rest of the inbox waits")

    def pay(self, request_id: str, prompt: str, duration: float) -> str | None:
        """Pay for exactly the decided request; after a crash the service follows the journaled payment.

        Over the approval threshold the request waits in the operator's queue (None: try again next pass);
        a denial is final and the request is skipped.
        """
        try:
            outcome = self.service.generate(prompt, duration=duration, wait=False)
        except AwaitingApprovalError as exc:
            if self.state.get(request_id).get("approvalId") != exc.approval_id:
                log(f"{request_id}: waiting for the operator: {exc}")
                self.state.set(request_id, approvalId=exc.approval_id)
            return None
        except ApprovalDeniedError as exc:
            log(f"{request_id}: not bought, the operator said no: {exc}")
            self.state.set(request_id, status="skipped", reason=str(exc))
            return None
        except (WalletFrozenError, BudgetExceededError) as exc:
            raise Stop(str(exc)) from None
        except PaymentStateUnknownError as exc:
            raise Stop(f"{request_id}: {exc}") from None
        log(f"{request_id}: task {outcome.task_id}" + (" (already paid, following it)" if outcome.attached else ""))
        return outcome.task_id

    def finish(self, request: dict[str, Any], record: dict[str, Any]) -> None:
        request_id, task_id = str(request["id"]), str(record["taskId"])
        try:
            status = self.service.wait(task_id)
            files = self.service.download(task_id, self.videos, status=status)
        except (GenerationFailedError, TaskNotFoundError) as exc:
            log(f"{request_id}: {exc}")
            self.state.set(request_id, status="failed", reason=str(exc))
            return
        payment = next((p for p in self.service.receipts() if p.task_id == task_id), None)
        caption = (
            f'{request.get("from", "you")}, here\'s "{record["prompt"]}" — a {record["duration"]:g}s AI video. '
            f"#imagine #aivideo"
        )
        append_jsonl(
            self.outbox,
            {
                "requestId": request_id,
                "to": request.get("from"),
                "caption": caption,
                "videoPath": str(files.video),
                "videoUrl": status.video_url,
                "taskId": task_id,
                "paid": format_usdc(payment.amount) if payment else None,
                "amount": str(payment.amount) if payment else "0",
                "transaction": payment.transaction if payment else None,
                "postedAt": int(time.time()),
            },
        )
        self.posted.add(request_id)
        self.state.set(request_id, status="posted")
        log(f"{request_id}: posted {files.video}")


# ------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inbox", type=Path, help="JSONL requests (default: DATA_DIR/social-bot/inbox.jsonl)")
    parser.add_argument("--outbox", type=Path, help="JSONL posts (default: DATA_DIR/social-bot/outbox.jsonl)")
    parser.add_argument("--daily-budget", type=Decimal, help="USDC the bot may spend per 24 h (IMAGINE_DAILY_CAP)")
    parser.add_argument("--base-url", help="Imagine API (IMAGINE_BASE_URL); unset = the embedded sandbox")
    parser.add_argument("--follow", action="store_true", help="keep watching the inbox for new requests")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between inbox reads with --follow")
    args = parser.parse_args(argv)

    overrides: dict[str, Any] = {}
    if args.base_url:
        overrides["base_url"] = args.base_url
    settings = Settings(**overrides)
    daily_budget = int(args.daily_budget * 1_000_000) if args.daily_budget is not None else None
    home = settings.data_dir / "social-bot"
    inbox = args.inbox or home / "inbox.jsonl"
    outbox = args.outbox or home / "outbox.jsonl"
    if not inbox.exists() and args.inbox is None:
        home.mkdir(parents=True, exist_ok=True)
        inbox.write_text("".join(json.dumps(r) + "\n" for r in DEMO_INBOX), encoding="utf-8")
        log(f"no inbox yet: wrote a demo inbox to {inbox}")

    try:
        service = ImagineService.create(settings)
    except ImagineError as exc:
        log(f"cannot start: {exc}")
        return 2
    with service:
        service.queue_approvals("social-bot")  # no human here: over-threshold buys wait for the operator
        state = BotState(None if service.is_embedded_sandbox else home / "state.json")
        for line in banner(service, outbox, state, daily_budget):
            log(line)
        bot = SocialBot(service, inbox, outbox, state, home / "videos", daily_budget)

        def stop(signum: int, frame: object) -> None:
            bot.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        stopped = bot.run(follow=args.follow, poll=args.poll)
        print(json.dumps({"posted": len(bot.posted), "stopped": stopped, "spent": str(bot.spent_today())}), flush=True)
    return 4 if stopped and stopped.startswith("trouble") else 0


def banner(service: ImagineService, outbox: Path, state: BotState, daily_budget: int | None) -> list[str]:
    """The truth about this run: which API it pays, with which wallet, which books, and what persists."""
    report = service.budget()
    books = service.books
    if service.is_embedded_sandbox:
        api = (
            f"{SANDBOX_NOTICE} API: the embedded sandbox in this process; wallet: a throwaway key "
            f"{report.address} funded by the sandbox."
        )
    elif service.is_sandbox:
        api = (
            f"SANDBOX: a loopback sandbox server at {service.client.base_url}, paid with your own key "
            f"{report.address}; demo money, no real money moves."
        )
    else:
        api = f"REAL MONEY: the API at {service.client.base_url}, paid with your key {report.address}."
    kept = [f"the outbox {outbox}", f"the {books.label} ({books.display})"]
    if state.path is not None:
        kept.append(f"the bot's journal {state.path}")
    lost = (
        "" if state.path is not None else ("; the embedded sandbox's jobs and the bot's journal end with this process")
    )
    own = (
        f"its own daily budget {format_usdc(daily_budget)} (what this bot spent in the last 24 h)"
        if daily_budget is not None
        else "no daily budget of its own"
    )
    return [
        api,
        f"Books: {books.label}. Budget: {own}, under the operator's caps ({report.vocabulary()}).",
        "Persists between runs: " + ", ".join(kept) + lost + ".",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
