"""Server-rendered HTML for the console: plain f-strings with every value escaped, no template engine.

Nothing secret is ever rendered: no signed header, no key, no database password, no URL query string.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from ..books import ApprovalRecord, AuditEvent, Booked, BudgetReport, BudgetTotals, Caps, PaymentRecord, TaskRecord
from ..money import format_usdc

__all__ = ["EXPLORERS", "explorer_link", "is_sandbox", "redact_url"]

EXPLORERS = {"base": "https://basescan.org/tx/", "base-sepolia": "https://sepolia.basescan.org/tx/"}
_TX = re.compile(r"^0x[0-9a-fA-F]{64}$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
NAV = (
    ("/", "Budget"),
    ("/receipts", "Receipts"),
    ("/videos", "Videos"),
    ("/jobs", "Jobs"),
    ("/unknown", "Unknown"),
    ("/approvals", "Approvals"),
    ("/audit", "Audit"),
)

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
header a{color:#cfd6e4;text-decoration:none}header a.on{color:#fff;font-weight:600}
header .brand{font-weight:700;margin-right:10px}main{padding:18px 22px;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:6px 9px;border-bottom:1px solid #e3e6ec;
text-align:left;vertical-align:top}th{background:#eef0f4;font-weight:600}td.num{text-align:right;
font-variant-numeric:tabular-nums}.badge{padding:1px 7px;border-radius:9px;background:#e3e6ec;font-size:12px}
.paid{background:#d8f3df}.unknown,.pending,.awaiting_approval{background:#fde9c8}.rejected,.denied{background:#f9d6d6}
.frozen{background:#b3261e;color:#fff;padding:4px 10px;border-radius:4px}.ok{color:#1a7f37}
.warn{background:#fff4d6;border:1px solid #e6c36a;padding:8px 12px;margin:8px 0;border-radius:4px}
button{font:inherit;padding:4px 12px;border-radius:4px;border:1px solid #8a93a6;background:#fff;cursor:pointer}
button.danger{background:#b3261e;color:#fff;border-color:#b3261e}button.go{background:#1a7f37;color:#fff;
border-color:#1a7f37}.cards{display:flex;gap:14px;flex-wrap:wrap}.card{background:#fff;padding:12px;
border-radius:6px;width:340px;box-shadow:0 1px 2px #0002}.card video{width:100%;background:#000}
.muted{color:#6b7385}form.inline{display:inline}progress{width:220px}#toasts{position:fixed;right:14px;
bottom:14px;max-width:420px}#toasts div{background:#1d2330;color:#fff;padding:8px 12px;margin-top:6px;
border-radius:4px}svg{background:#fff;border:1px solid #e3e6ec}
"""

SCRIPT = """
(function(){
  const box=document.getElementById('toasts');
  if(!window.EventSource||!box)return;
  const feed=new EventSource('/events/audit');
  feed.addEventListener('audit',e=>{const ev=JSON.parse(e.data);const d=document.createElement('div');
    d.className='toast '+ev.kind;d.dataset.code=ev.code;d.textContent=ev.kind+': '+ev.message;box.appendChild(d);
    setTimeout(()=>d.remove(),15000);});
})();
"""

JOBS_SCRIPT = """
(function(){
  const feed=new EventSource('/events/jobs');
  feed.addEventListener('jobs',e=>{const jobs=JSON.parse(e.data);const body=document.getElementById('jobs-body');
    body.replaceChildren();for(const j of jobs){const tr=document.createElement('tr');tr.dataset.task=j.taskId;
      const cells=[j.taskId,j.prompt||'',j.status];for(const c of cells){const td=document.createElement('td');
        td.textContent=c;tr.appendChild(td);}
      const td=document.createElement('td');const bar=document.createElement('progress');bar.max=100;
      bar.value=j.progress||0;td.appendChild(bar);td.append(' '+Math.round(j.progress||0)+'%');tr.appendChild(td);
      body.appendChild(tr);}
    document.getElementById('jobs-count').textContent=jobs.length;});
})();
"""


def usdc(amount: int | None, *, name: str = "") -> str:
    """An amount as text, with its atomic value in ``data-atomic`` (what tests compare with ``budget --json``)."""
    if amount is None:
        return f'<span data-name="{escape(name)}" data-atomic="">unlimited</span>'
    return f'<span data-name="{escape(name)}" data-atomic="{amount}">{escape(format_usdc(amount))}</span>'


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def redact_url(url: str | None) -> str:
    """Scheme, host, port and path only: a query string or user info may carry a token."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    if parts.scheme not in ("http", "https"):
        return f"{parts.scheme}:…" if parts.scheme else "(not a URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def is_sandbox(resource: str) -> bool:
    """A payment to a loopback endpoint is the local sandbox: not real money."""
    try:
        host = (urlsplit(resource).hostname or "").lower()
    except ValueError:
        return False
    return host in _LOOPBACK or host.endswith(".test") or host.startswith("127.")


def explorer_link(network: str, transaction: str | None) -> str:
    if not transaction:
        return '<span class="muted">-</span>'
    base = EXPLORERS.get(network)
    short = escape(transaction[:10] + "…" + transaction[-6:]) if len(transaction) > 20 else escape(transaction)
    if base is None or not _TX.match(transaction):
        return f'<span title="{escape(transaction)}">{short}</span>'
    return f'<a class="tx" href="{base}{escape(transaction)}" target="_blank" rel="noopener noreferrer">{short}</a>'


@dataclass(frozen=True)
class Governs:
    """What this console governs: the wallet, the API and network it pays, the books it shows first."""

    address: str
    api: str
    networks: str
    books: str
    rpc: str | None = None  # scheme and host only


def wallet_panel(facts: Governs, balance: str | None) -> str:
    shown = balance if balance is not None else "no RPC configured (IMAGINE_RPC_URL): balance not read"
    return (
        f'<table id="governs"><tr><th>wallet</th><td id="wallet-address">{escape(facts.address)}</td></tr>'
        f'<tr><th>USDC balance</th><td id="wallet-balance">{escape(shown)}</td></tr>'
        f'<tr><th>API it pays</th><td id="api">{escape(facts.api)}</td></tr>'
        f'<tr><th>network</th><td id="network">{escape(facts.networks)}</td></tr>'
        f'<tr><th>books shown first</th><td id="books">{escape(facts.books)}</td></tr></table>'
    )


def _books_badge(sandbox: bool) -> str:
    name = "sandbox" if sandbox else "real"
    return f'<span class="badge books-{name}" data-books="{name}">{name} books</span>'


def layout(
    title: str,
    path: str,
    body: str,
    *,
    csrf: str,
    frozen: bool,
    ledger: str,
    extra_script: str = "",
    governs: Governs | None = None,
) -> str:
    nav = "".join(f'<a href="{href}" class="{"on" if href == path else ""}">{label}</a>' for href, label in NAV)
    state = (
        '<span class="frozen" id="frozen-badge">FROZEN: no payments</span>'
        if frozen
        else '<span class="ok" id="frozen-badge">payments allowed</span>'
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="csrf" content="{escape(csrf)}">
<title>{escape(title)} · imagine-agent console</title><style>{STYLE}</style></head><body>
<header><span class="brand">imagine-agent console</span>{nav}{_governs_line(governs)}
<span style="margin-left:auto">{state}</span></header>
<main><h1>{escape(title)}</h1>{body}<p class="muted">ledger: {escape(ledger)}</p></main>
<div id="toasts"></div><script>{SCRIPT}</script>{f"<script>{extra_script}</script>" if extra_script else ""}
</body></html>"""


def _governs_line(governs: Governs | None) -> str:
    if governs is None:
        return ""
    return (
        f'<span class="muted" id="governs-line">wallet {escape(governs.address)} · pays {escape(governs.api)} '
        f"on {escape(governs.networks)} · {escape(governs.books)}</span>"
    )


def post_button(
    action: str, label: str, csrf: str, *, css: str = "", fields: dict[str, str] | None = None, button_id: str = ""
) -> str:
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in (fields or {}).items())
    ident = f' id="{escape(button_id)}"' if button_id else ""
    return (
        f'<form class="inline" method="post" action="{escape(action)}"><input type="hidden" name="csrf" '
        f'value="{escape(csrf)}">{hidden}<button type="submit" class="{css}"{ident}>{escape(label)}</button>'
        "</form>"
    )


def budget_page(
    totals: BudgetTotals,
    caps: Caps,
    threshold: int | None,
    payments: Sequence[PaymentRecord],
    warnings: Sequence[AuditEvent],
    csrf: str,
    now: float,
    *,
    report: BudgetReport | None = None,
) -> str:
    body = []
    if report is not None:
        body.append(
            f'<p id="vocabulary">{escape(report.vocabulary())} '
            f'<span data-name="largest-next-payment" data-atomic="{report.largest_next_payment}"></span></p>'
        )
    rows = [
        ("daily", "rolling 24 h", caps.daily, totals.daily_used, totals.remaining_daily),
        ("total", "all time", caps.total, totals.total_used, totals.remaining_total),
    ]
    body.append('<table id="windows"><tr><th>window</th><th>cap</th><th>used</th><th>left</th></tr>')
    for name, label, cap, used, left in rows:
        body.append(
            f'<tr data-window="{name}"><td>{name} <span class="muted">({label})</span></td>'
            f'<td class="num">{usdc(cap, name=f"cap-{name}")}</td>'
            f'<td class="num">{usdc(used, name=f"used-{name}")}</td>'
            f'<td class="num">{usdc(left, name=f"remaining-{name}")}</td></tr>'
        )
    body.append("</table>")
    body.append(
        '<table id="totals" style="margin-top:12px"><tr><th>spent (paid)</th><th>reserved</th>'
        "<th>unknown (counts as spent)</th><th>per-call cap</th><th>approval threshold</th>"
        f"<th>payments last minute</th></tr><tr><td class=num>{usdc(totals.spent, name='spent')}</td>"
        f"<td class=num>{usdc(totals.reserved, name='reserved')}</td>"
        f"<td class=num>{usdc(totals.unknown, name='unknown')}</td>"
        f"<td class=num>{usdc(caps.per_call, name='per-call')}</td>"
        f"<td class=num>{usdc(threshold, name='threshold')}</td>"
        f"<td class=num>{totals.payments_last_minute} / {caps.rate_per_minute or '∞'}</td></tr></table>"
    )
    body.append("<h2>Spend over the last 24 h</h2>" + spend_chart(payments, caps.daily, now))
    body.append("<h2>Kill switch</h2>")
    if totals.frozen:
        body.append(
            "<p>Every process sharing this ledger has stopped paying.</p>"
            + post_button("/unfreeze", "Unfreeze: allow payments again", csrf, css="go", button_id="unfreeze")
        )
    else:
        body.append(
            "<p>Freezing stops every payment header at once, in every process sharing this ledger.</p>"
            + post_button("/freeze", "Freeze all payments", csrf, css="danger", button_id="freeze")
        )
    if report is not None and report.other is not None:
        o = report.other
        body.append(
            f'<h2>Also, apart: {escape(o.label)}</h2><table id="other-books" data-books="'
            f'{"sandbox" if o.sandbox else "real"}"><tr><th>spent</th><th>reserved</th><th>unknown</th>'
            f"<th>payments</th><th>awaiting approval</th></tr><tr><td class=num>{usdc(o.spent)}</td>"
            f"<td class=num>{usdc(o.reserved)}</td><td class=num>{usdc(o.unknown)}</td>"
            f"<td class=num>{o.payments}</td><td class=num>{o.awaiting_approvals}</td></tr></table>"
            '<p class="muted">Counted apart: never added to the numbers above.</p>'
        )
    if warnings:
        body.append("<h2>Budget warnings</h2>")
        body += [
            f'<div class="warn" data-code="{escape(w.code)}">{when(w.created_at)}: {escape(w.message)}</div>'
            for w in warnings
        ]
    return "".join(body)


def spend_chart(
    payments: Sequence[PaymentRecord], cap: int | None, now: float, *, width: int = 720, height: int = 200
) -> str:
    """Cumulative spend (everything counted against the caps) over the last 24 h, as inline SVG."""
    start = now - 86_400
    counted = sorted(
        (p for p in payments if p.created_at > start and p.state.value not in ("released", "cancelled")),
        key=lambda p: p.created_at,
    )
    total = sum(p.amount for p in counted)
    top = max(total, cap or 0, 1)
    pad = 30

    def x(t: float) -> float:
        return pad + (t - start) / 86_400 * (width - 2 * pad)

    def y(v: int) -> float:
        return height - pad - v / top * (height - 2 * pad)

    points, running = [f"{x(start):.1f},{y(0):.1f}"], 0
    for p in counted:
        points.append(f"{x(p.created_at):.1f},{y(running):.1f}")
        running += p.amount
        points.append(f"{x(p.created_at):.1f},{y(running):.1f}")
    points.append(f"{x(now):.1f},{y(running):.1f}")
    cap_line = ""
    if cap:
        cap_line = (
            f'<line x1="{pad}" x2="{width - pad}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" stroke="#b3261e" '
            f'stroke-dasharray="4 3"/><text x="{width - pad}" y="{y(cap) - 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="#b3261e">daily cap {escape(format_usdc(cap))}</text>'
        )
    return (
        f'<svg id="spend-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="cumulative spend over 24 h" data-total="{total}" data-points="{len(counted)}">'
        f'<line x1="{pad}" x2="{width - pad}" y1="{height - pad}" y2="{height - pad}" stroke="#8a93a6"/>'
        f'{cap_line}<polyline fill="none" stroke="#2f6fdd" stroke-width="2" points="{" ".join(points)}"/>'
        f'<text x="{pad}" y="{height - 8}" font-size="11" fill="#6b7385">24 h ago</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="11" text-anchor="end" fill="#6b7385">now</text>'
        f'<text x="{pad}" y="16" font-size="11" fill="#2f6fdd">{escape(format_usdc(total))} counted</text></svg>'
    )


def receipts_page(
    payments: Iterable[Booked[PaymentRecord]], filters: dict[str, str], states: Sequence[str], endpoints: Sequence[str]
) -> str:
    def select(name: str, options: Sequence[str]) -> str:
        opts = "".join(
            f'<option value="{escape(o)}"{" selected" if filters.get(name) == o else ""}>{escape(o or "all")}</option>'
            for o in ("", *options)
        )
        return f'<label>{name} <select name="{name}">{opts}</select></label> '

    body = [
        '<form method="get" id="filters">',
        select("state", states),
        select("endpoint", endpoints),
        select("origin", ["sandbox", "real"]),
        '<button type="submit">Filter</button></form>',
        '<table id="receipts"><tr><th>when (UTC)</th><th>state</th><th>amount</th><th>network</th>'
        "<th>endpoint</th><th>origin</th><th>books</th><th>task</th><th>transaction</th><th>reason</th></tr>",
    ]
    count = 0
    for booked in payments:
        p = booked.record
        count += 1
        origin = "sandbox" if p.sandbox else "real"  # as recorded when it was paid (money-safety rule 8)
        body.append(
            f'<tr data-id="{escape(p.id)}" data-state="{p.state.value}"><td>{when(p.created_at)}</td>'
            f'<td><span class="badge {p.state.value}">{p.state.value}</span></td>'
            f'<td class="num">{usdc(p.amount)}</td><td>{escape(p.network)}</td>'
            f"<td>{escape(redact_url(p.resource))}</td><td>{origin}</td><td>{_books_badge(booked.sandbox)}</td>"
            f"<td>{escape(p.task_id or '-')}</td>"
            f"<td>{explorer_link(p.network, p.transaction)}</td><td>{escape(p.reason or '')}</td></tr>"
        )
    body.append(f'</table><p class="muted"><span id="receipt-count">{count}</span> payment(s)</p>')
    return "".join(body)


def videos_page(videos: Sequence[tuple[TaskRecord, PaymentRecord | None, bool, bool]]) -> str:
    if not videos:
        return '<p id="no-videos">No delivered videos yet.</p>'
    cards = []
    for task, payment, local_video, local_preview in videos:
        tid = escape(task.task_id)
        poster = f' poster="/media/{tid}/preview"' if local_preview else ""
        src = f"/media/{tid}/video" if local_video else escape(task.video_url or "")
        coin = _coin(task)
        price = usdc(payment.amount) if payment is not None else '<span class="muted">unknown price</span>'
        cards.append(
            f'<div class="card" data-task="{tid}"><video controls preload="metadata" src="{src}"{poster}>'
            f"</video><div><b>{escape((task.prompt or '')[:200])}</b></div><div>{price} · "
            f'<span class="muted">{when(task.updated_at)}</span></div><div class="muted">task {tid}'
            f"{coin}</div></div>"
        )
    return f'<div class="cards" id="gallery">{"".join(cards)}</div>'


def _coin(task: TaskRecord) -> str:
    import json

    try:
        result = json.loads(task.result_json or "{}")
    except ValueError:
        return ""
    token = result.get("token") if isinstance(result, dict) else None
    if isinstance(token, dict):
        token = token.get("address") or token.get("symbol")
    return f" · coin {escape(str(token))}" if token else ""


def jobs_page(tasks: Sequence[TaskRecord]) -> str:
    rows = "".join(
        f'<tr data-task="{escape(t.task_id)}"><td>{escape(t.task_id)}</td><td>{escape(t.prompt or "")}</td>'
        f'<td>{escape(t.status)}</td><td><progress max="100" value="{t.progress or 0}"></progress> '
        f"{round(t.progress or 0)}%</td></tr>"
        for t in tasks
    )
    return (
        "<p>Live: updated as the paying processes poll (server-sent events). "
        f'<span id="jobs-count">{len(tasks)}</span> pending.</p><table id="jobs"><thead><tr><th>task</th>'
        f'<th>prompt</th><th>status</th><th>progress</th></tr></thead><tbody id="jobs-body">{rows}</tbody></table>'
    )


def unknown_page(payments: Sequence[PaymentRecord], csrf: str, rpc: str | None, result: str | None) -> str:
    body = []
    if result:
        body.append(f'<div class="warn" id="reconcile-result">{escape(result)}</div>')
    body.append(
        "<p>Payments whose outcome is not proven (unknown, pending, or reserved and in flight): they count "
        "as spent until reconciled. "
        + (
            f"Reconcile checks the chain at {escape(rpc)}."
            if rpc
            else "No RPC is configured (IMAGINE_RPC_URL): reconcile proves only what the ledger itself shows."
        )
        + "</p>"
    )
    body.append(post_button("/reconcile", "Reconcile now", csrf, css="go", button_id="reconcile"))
    body.append(
        '<table id="unknown" style="margin-top:10px"><tr><th>when (UTC)</th><th>state</th><th>amount</th>'
        "<th>network</th><th>nonce</th><th>valid before</th><th>reason</th></tr>"
    )
    for p in payments:
        body.append(
            f'<tr data-id="{escape(p.id)}"><td>{when(p.created_at)}</td><td><span class="badge '
            f'{p.state.value}">{p.state.value}</span></td><td class="num">{usdc(p.amount)}</td>'
            f"<td>{escape(p.network)}</td><td>{escape(p.nonce or '-')}</td>"
            f"<td>{when(p.valid_before) if p.valid_before else '-'}</td><td>{escape(p.reason or '')}</td></tr>"
        )
    body.append("</table>")
    return "".join(body)


def approvals_page(entries: Sequence[Booked[ApprovalRecord]], csrf: str) -> str:
    body = [
        '<table id="approvals"><tr><th>id</th><th>state</th><th>amount</th><th>for</th><th>payee</th>'
        "<th>asked by</th><th>asked (UTC)</th><th>expires (UTC)</th><th>books</th><th>decision</th></tr>"
    ]
    for booked in entries:
        a = booked.record
        if a.state.value == "awaiting_approval":
            decision = (
                post_button(f"/approvals/{a.id}/approve", "Approve", csrf, css="go", button_id=f"approve-{a.id}")
                + " "
                + post_button(f"/approvals/{a.id}/deny", "Deny", csrf, css="danger", button_id=f"deny-{a.id}")
            )
        else:
            decision = escape(f"{a.decided_by or ''} {a.reason or ''}".strip())
        body.append(
            f'<tr data-id="{escape(a.id)}" data-state="{a.state.value}"><td>{escape(a.id)}</td>'
            f'<td><span class="badge {a.state.value}">{a.state.value}</span></td>'
            f'<td class="num">{usdc(a.amount)}</td><td>{escape(a.description or redact_url(a.resource))}</td>'
            f"<td>{escape(a.pay_to)} <span class=muted>({escape(a.network)})</span></td>"
            f"<td>{escape(a.requester)}</td><td>{when(a.created_at)}</td><td>{when(a.expires_at)}</td>"
            f"<td>{_books_badge(booked.sandbox)}</td><td>{decision}</td></tr>"
        )
    body.append("</table>")
    if not entries:
        body.append('<p id="no-approvals">Nothing is waiting for approval.</p>')
    return "".join(body)


def audit_page(events: Sequence[Booked[AuditEvent]]) -> str:
    body = [
        '<table id="audit"><tr><th>when (UTC)</th><th>kind</th><th>code</th><th>amount</th><th>message</th>'
        "<th>source</th><th>books</th></tr>"
    ]
    for booked in events:
        e = booked.record
        body.append(
            f'<tr data-kind="{escape(e.kind)}" data-code="{escape(e.code)}"><td>{when(e.created_at)}</td>'
            f"<td>{escape(e.kind)}</td><td><code>{escape(e.code)}</code></td>"
            f'<td class="num">{usdc(e.amount) if e.amount is not None else ""}</td>'
            f"<td>{escape(e.message)}</td><td>{escape(e.source or '')}</td>"
            f"<td>{_books_badge(booked.sandbox)}</td></tr>"
        )
    body.append("</table>")
    return "".join(body)
