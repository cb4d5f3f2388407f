"""The budget-capped wallet (policy, then reserve, then sign, then journal), its approval step and its keys.

``policy`` says what may be paid, ``approval`` who approves a payment that needs a person, ``wallet`` reserves,
signs and journals, ``keys`` loads the paying key and writes keystores.
"""

from __future__ import annotations

from .approval import _PERSON as _PERSON  # tests read a person's approval of the running call
from .approval import ApprovalRequest as ApprovalRequest
from .approval import Approver as Approver
from .approval import PersonApproval as PersonApproval
from .approval import approval_context as approval_context
from .approval import person_approved as person_approved
from .policy import PaymentPolicy as PaymentPolicy
from .wallet import Authorization as Authorization
from .wallet import Wallet as Wallet
from .wallet import collect_warnings as collect_warnings

__all__ = [
    "ApprovalRequest",
    "Approver",
    "Authorization",
    "PaymentPolicy",
    "PersonApproval",
    "Wallet",
    "approval_context",
    "collect_warnings",
    "person_approved",
]
