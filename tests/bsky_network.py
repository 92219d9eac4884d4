"""A real, local Bluesky network (AT Protocol reference servers) for tests.

Starts ``tests/bsky/network.mjs`` (``@atproto/dev-env`` 0.3.215: PLC + PDS +
AppView + Ozone, or PLC + PDS only) on 127.0.0.1, plus a throw-away PostgreSQL
cluster for the AppView.  Everything listens on loopback only; URLs use
``localhost`` because that is what the PDS advertises in DID documents.

Usage in tests (the root conftest imports the fixture)::

    from tests.bsky_network import bsky_network  # session-scoped fixture

    def test_something(bsky_network):
        alice = bsky_network.client("alice")
        post = alice.send_post("hello")
        bsky_network.wait_visible(post.uri)

Standalone (``make demo``)::

    python -m tests.bsky_network --state-file /tmp/bsky-state.json

Environment variables:

``NUMPOLVILLE_REQUIRE_BSKY``
    When set (CI), a missing ``tests/bsky/node_modules`` or PostgreSQL is an
    error instead of a skip / a degraded network.
``NUMPOLVILLE_BSKY_APPVIEW``
    ``auto`` (default: AppView if PostgreSQL is installed), ``1`` (always) or
    ``0`` (never: ``TestNetworkNoAppView``).
``NUMPOLVILLE_BSKY_START_TIMEOUT``
    Seconds to wait for the network to be ready (default 180).
``BSKY_PLC_PORT``, ``BSKY_PDS_PORT``, ``BSKY_APPVIEW_PORT``, ``BSKY_OZONE_PORT``
    Passed through to network.mjs (default: free ports).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    import atproto

REPO_ROOT = Path(__file__).resolve().parent.parent
BSKY_DIR = REPO_ROOT / 'tests' / 'bsky'
NETWORK_SCRIPT = BSKY_DIR / 'network.mjs'
NODE_MODULES = BSKY_DIR / 'node_modules'

REQUIRE_ENV = 'NUMPOLVILLE_REQUIRE_BSKY'
APPVIEW_ENV = 'NUMPOLVILLE_BSKY_APPVIEW'
TIMEOUT_ENV = 'NUMPOLVILLE_BSKY_START_TIMEOUT'

DEFAULT_START_TIMEOUT = 180.0
STOP_GRACE = 10.0

__all__ = [
    'BlueskyNetwork',
    'BlueskyNetworkError',
    'PostgresCluster',
    'PostgresUnavailable',
    'bsky_network',
    'find_pg_bindir',
    'make_bsky_network_fixture',
    'node_modules_installed',
    'require_bsky',
]


class BlueskyNetworkError(RuntimeError):
    """The local network could not be started (message includes log tails)."""


class PostgresUnavailable(BlueskyNetworkError):
    """No PostgreSQL server binaries on this machine."""


def require_bsky() -> bool:
    """True when a missing piece must fail loudly instead of skipping (CI)."""
    return os.environ.get(REQUIRE_ENV, '').strip().lower() not in ('', '0', 'false', 'no')


def node_modules_installed() -> bool:
    return (NODE_MODULES / '@atproto' / 'dev-env' / 'package.json').is_file()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tail(path: t.Union[str, Path, None], lines: int = 60) -> str:
    if not path:
        return '(no log)'
    try:
        with open(path, errors='replace') as f:
            content = f.read().splitlines()
    except OSError as e:
        return f'(could not read {path}: {e})'
    return '\n'.join(content[-lines:]) or '(empty log)'


def _rss_kib(pid: int) -> t.Optional[int]:
    """Resident set size of a process in KiB (Linux), None if unknown."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _pss_kib(pid: int) -> t.Optional[int]:
    """Proportional set size in KiB (shared pages split between processes)."""
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# --------------------------------------------------------------------------- PostgreSQL


def find_pg_bindir() -> t.Optional[Path]:
    """Newest ``/usr/lib/postgresql/*/bin`` holding pg_ctl and initdb, or None."""
    candidates = []
    for d in glob.glob('/usr/lib/postgresql/*/bin'):
        p = Path(d)
        if (p / 'pg_ctl').is_file() and (p / 'initdb').is_file():
            try:
                version = float(p.parent.name)
            except ValueError:
                version = 0.0
            candidates.append((version, p))
    if not candidates:
        return None
    return sorted(candidates)[-1][1]


class PostgresCluster:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port>, fsync off.

    PostgreSQL refuses to run as root, so as root every server command runs as
    the ``postgres`` user (``runuser -u postgres --``) in a temp dir it owns.
    """

    def __init__(self, port: t.Optional[int] = None, user: str = 'postgres') -> None:
        self.bindir = find_pg_bindir()
        self.port = port
        self.user = user
        self.base_dir: t.Optional[Path] = None
        self.running = False

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / 'data'

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / 'postgres.log'

    @property
    def url(self) -> str:
        return f'postgresql://postgres@127.0.0.1:{self.port}/postgres'

    def _cmd(self, *argv: str) -> list[str]:
        if os.geteuid() == 0:
            return ['runuser', '-u', self.user, '--', *argv]
        return list(argv)

    def _run(self, *argv: str, timeout: float = 60) -> None:
        cmd = self._cmd(*argv)
        res = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False
        )
        if res.returncode != 0:
            raise BlueskyNetworkError(
                f'PostgreSQL command failed ({res.returncode}): {" ".join(cmd)}\n{res.stdout}\n'
                f'--- postgres log tail ---\n{_tail(self.log_file if self.base_dir else None, 30)}'
            )

    def prepare(self) -> PostgresCluster:
        """Choose the port and create the (empty) base dir; ``url`` is valid after this."""
        if self.bindir is None:
            raise PostgresUnavailable(
                'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin '
                '(install the Debian package "postgresql", e.g. `make -f Makefile.bsky .postgres.stamp`)'
            )
        if self.base_dir is not None:
            return self
        if self.port is None:
            self.port = _free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix='numpolville-pg-'))
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam(self.user)
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
        return self

    def start(self) -> PostgresCluster:
        """initdb + pg_ctl start (waits until it accepts connections)."""
        self.prepare()
        bindir = self.bindir
        assert bindir is not None  # prepare() says why otherwise
        try:
            self._run(
                str(bindir / 'initdb'),
                '-D', str(self.data_dir),
                '-U', 'postgres',
                '--auth=trust',
                '--encoding=UTF8',
                '--no-sync',
                '--no-instructions',
            )
            opts = ' '.join([
                f'-p {self.port}',
                '-c listen_addresses=127.0.0.1',
                f'-c unix_socket_directories={self.base_dir}',
                '-c fsync=off',
                '-c synchronous_commit=off',
                '-c full_page_writes=off',
                '-c max_connections=200',
            ])
            self._run(
                str(bindir / 'pg_ctl'),
                '-D', str(self.data_dir),
                '-l', str(self.log_file),
                '-o', opts,
                '-w', '-t', '60',
                'start',
            )
            self.running = True
        except BaseException:
            self.stop()
            raise
        return self

    def pid(self) -> t.Optional[int]:
        try:
            return int((self.data_dir / 'postmaster.pid').read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def _stop_args(self) -> list[str]:
        assert self.bindir is not None and self.base_dir is not None
        return [str(self.bindir / 'pg_ctl'), '-D', str(self.data_dir), '-m', 'immediate', '-w', 'stop']

    def stop_command(self) -> list[str]:
        """Full argv (with runuser when root) that stops this cluster."""
        return self._cmd(*self._stop_args())

    def stop(self) -> None:
        if self.base_dir is None:
            return
        if self.running or (self.data_dir / 'postmaster.pid').exists():
            try:
                self._run(*self._stop_args(), timeout=30)
            except Exception:  # noqa: BLE001 - last resort: by PID
                pid = self.pid()
                if pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self.running = False
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = None


# --------------------------------------------------------------------------- network


class BlueskyNetwork:
    """PLC + PDS (+ AppView) from ``@atproto/dev-env``, run by ``node network.mjs``.

    After :meth:`start`, the state-file values are attributes: ``pds_url``,
    ``plc_url``, ``appview_url`` (None without AppView), ``firehose_url``,
    ``firehose_base_uri`` (for ``FirehoseSubscribeReposClient``), ``accounts``
    (``{'bot': {'handle', 'did', 'password'}, 'alice': ..., ...}``), ``pid``.
    """

    ACCOUNT_NAMES = ('bot', 'alice', 'bob', 'carol', 'dan')

    def __init__(
        self,
        appview: t.Optional[bool] = None,
        state_file: t.Union[str, Path, None] = None,
        start_timeout: t.Optional[float] = None,
        node: str = 'node',
        env: t.Optional[t.Mapping[str, str]] = None,
    ) -> None:
        if appview is None:
            appview = self._appview_from_env()
        self.appview_wanted = appview  # None = auto
        self._state_file_arg = Path(state_file).resolve() if state_file else None
        self.start_timeout = float(start_timeout or os.environ.get(TIMEOUT_ENV) or DEFAULT_START_TIMEOUT)
        self.node = node
        self.extra_env = dict(env or {})

        self.run_dir: t.Optional[Path] = None
        self.state_file: t.Optional[Path] = None
        self.log_file: t.Optional[Path] = None
        self.state: dict[str, t.Any] = {}
        self.postgres: t.Optional[PostgresCluster] = None
        self.proc: t.Optional[subprocess.Popen] = None
        self.pid: t.Optional[int] = None
        self.startup_seconds: t.Optional[float] = None
        self.postgres_seconds: t.Optional[float] = None
        self._stopped = True
        self._lock = threading.Lock()

    @staticmethod
    def _appview_from_env() -> t.Optional[bool]:
        v = os.environ.get(APPVIEW_ENV, 'auto').strip().lower()
        if v in ('', 'auto'):
            return None
        return v not in ('0', 'false', 'no', 'off')

    # ------------------------------------------------------------ state attrs
    @property
    def has_appview(self) -> bool:
        return bool(self.state.get('appview'))

    @property
    def pds_url(self) -> str:
        return self.state['pds_url']

    @property
    def plc_url(self) -> str:
        return self.state['plc_url']

    @property
    def appview_url(self) -> t.Optional[str]:
        return self.state.get('appview_url')

    @property
    def firehose_url(self) -> str:
        return self.state['firehose_url']

    @property
    def firehose_base_uri(self) -> str:
        """``ws://localhost:PORT/xrpc`` (what the SDK's firehose clients take)."""
        return self.firehose_url.rsplit('/', 1)[0]

    @property
    def accounts(self) -> dict[str, dict[str, str]]:
        return self.state['accounts']

    def did(self, name: str) -> str:
        return self.accounts[name]['did']

    def handle(self, name: str) -> str:
        return self.accounts[name]['handle']

    # ------------------------------------------------------------ lifecycle
    def start(self) -> BlueskyNetwork:
        with self._lock:
            if not self._stopped:
                return self
            self._stopped = False
            atexit.register(self.stop)
            t0 = time.monotonic()
            try:
                self._start()
            except BaseException:
                self._stop_locked()
                raise
            self.startup_seconds = time.monotonic() - t0
            return self

    def _start(self) -> None:
        if not NETWORK_SCRIPT.is_file():
            raise BlueskyNetworkError(f'{NETWORK_SCRIPT} is missing')
        if not node_modules_installed():
            raise BlueskyNetworkError(
                f'{NODE_MODULES} is missing: run `npm ci --prefix tests/bsky` '
                '(or `make -f Makefile.bsky tests/bsky/node_modules/.stamp`)'
            )
        if shutil.which(self.node) is None:
            raise BlueskyNetworkError(f'node executable {self.node!r} not found on PATH')

        self.run_dir = Path(tempfile.mkdtemp(prefix='numpolville-bsky-'))
        self.state_file = self._state_file_arg or (self.run_dir / 'state.json')
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        self.log_file = self.run_dir / 'node.log'
        node_tmp = self.run_dir / 'tmp'

        appview = self.appview_wanted
        if appview is None:  # auto
            appview = find_pg_bindir() is not None
            if not appview and require_bsky():
                raise PostgresUnavailable(
                    f'{REQUIRE_ENV} is set but PostgreSQL is not installed (needed by the AppView)'
                )
            if not appview:
                print('bsky_network: PostgreSQL not found, starting without AppView', file=sys.stderr)

        env = dict(os.environ)
        env.update(self.extra_env)
        env['BSKY_RUN_DIR'] = str(node_tmp)
        env.setdefault('NODE_ENV', 'test')
        env.setdefault('LOG_ENABLED', 'false')
        # never let a proxy variable route loopback traffic elsewhere
        env['NO_PROXY'] = env['no_proxy'] = 'localhost,127.0.0.1'
        argv = [self.node, str(NETWORK_SCRIPT), '--state-file', str(self.state_file)]
        go_file = self.run_dir / 'postgres.ready'
        if appview:
            # PostgreSQL starts while node imports dev-env; node waits for
            # go_file before it picks any port or connects.
            self.postgres = PostgresCluster()
            self.postgres.prepare()
            env['DB_POSTGRES_URL'] = self.postgres.url
            env['DB_POSTGRES_SCHEMA'] = 'numpolville'
            env['REDIS_HOST'] = 'unused.invalid'
            env['BSKY_WAIT_FILE'] = str(go_file)
        else:
            argv.append('--no-appview')
        # If this process dies without stop() (SIGKILL, CI timeout), node
        # notices it was orphaned, closes, and cleans up PostgreSQL and our dirs.
        env['BSKY_PARENT_PID'] = str(os.getpid())
        env['BSKY_ORPHAN_CLEANUP'] = json.dumps({
            'commands': [self.postgres.stop_command()] if self.postgres else [],
            'paths': [
                str(p)
                for p in (
                    self.postgres.base_dir if self.postgres else None,
                    self._state_file_arg,
                    self.run_dir,
                )
                if p
            ],
        })

        t0 = time.monotonic()
        with open(self.log_file, 'wb') as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=str(BSKY_DIR),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # own process group: a terminal's Ctrl-C reaches only us, and
                # stop() shuts node down in order (by PID)
                start_new_session=True,
            )
        self.pid = self.proc.pid
        if self.postgres is not None:
            self.postgres.start()
            self.postgres_seconds = time.monotonic() - t0
            go_file.touch()

        deadline = t0 + self.start_timeout
        while True:
            if self.state_file.exists():
                try:
                    self.state = json.loads(self.state_file.read_text())
                    break
                except (OSError, ValueError):
                    pass  # written atomically, but be tolerant
            rc = self.proc.poll()
            if rc is not None:
                raise BlueskyNetworkError(
                    f'node network.mjs exited with code {rc} before it was ready\n'
                    f'--- {self.log_file} (tail) ---\n{_tail(self.log_file)}' + self._pg_tail()
                )
            if time.monotonic() > deadline:
                raise BlueskyNetworkError(
                    f'local Bluesky network not ready after {self.start_timeout:.0f} s\n'
                    f'--- {self.log_file} (tail) ---\n{_tail(self.log_file)}' + self._pg_tail()
                )
            time.sleep(0.1)
        if self.state.get('pid') != self.pid:
            raise BlueskyNetworkError(f'state file pid {self.state.get("pid")} != node pid {self.pid}')

    def _pg_tail(self) -> str:
        if self.postgres and self.postgres.base_dir:
            return f'\n--- postgres log (tail) ---\n{_tail(self.postgres.log_file, 20)}'
        return ''

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # by PID only; network.mjs closes the servers and removes its TMPDIR
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        if self.postgres is not None:
            try:
                self.postgres.stop()
            finally:
                self.postgres = None
        if self._state_file_arg and self.state_file and self.state_file.exists():
            with contextlib.suppress(OSError):
                self.state_file.unlink()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def __enter__(self) -> BlueskyNetwork:
        return self.start()

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()

    def rss_kib(self) -> dict[str, t.Optional[int]]:
        """Memory in KiB: node (RSS), PostgreSQL (PSS of postmaster + backends, so
        shared buffers are not counted once per backend)."""
        pg_pid = self.postgres.pid() if self.postgres else None
        pg_total = None
        if pg_pid:
            pids = [pg_pid] + _children(pg_pid)
            pg_total = sum(_pss_kib(p) or 0 for p in pids)
        return {'node': _rss_kib(self.pid) if self.pid else None, 'postgres': pg_total}

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_file, lines)

    # ------------------------------------------------------------ clients
    def client(self, name: str, timeout: float = 15.0) -> atproto.Client:
        """A logged-in ``atproto.Client`` for account ``name`` ('bot', 'alice', ...).

        ``login()`` also fetches the profile from the AppView, which answers
        "Profile not found" until it has indexed the account: retried until
        ``timeout``.  Without AppView the profile is not fetched
        (``client.me`` is None; pass the DID explicitly for writes).
        """
        from atproto import Client
        from atproto_client.exceptions import AtProtocolError

        acc = self.accounts[name]
        deadline = time.monotonic() + timeout
        while True:
            client = Client(base_url=self.pds_url)
            try:
                client.login(acc['handle'], acc['password'], fetch_bsky_profile=self.has_appview)
                return client
            except AtProtocolError as e:
                if 'Profile not found' not in repr(e):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def appview_client(self) -> atproto.Client:
        """An unauthenticated client talking to the AppView directly (public reads)."""
        from atproto import Client

        if not self.appview_url:
            raise BlueskyNetworkError('this network runs without AppView')
        return Client(base_url=self.appview_url)

    def wait_visible(self, uri: str, deadline: float = 10.0, client: t.Any = None, interval: float = 0.05):
        """Poll the AppView (``app.bsky.feed.getPosts``) until ``uri`` is there.

        ``deadline`` is a number of seconds.  Returns the ``PostView``; raises
        ``TimeoutError`` if the post is not visible in time.  ``client``
        defaults to an unauthenticated client of the AppView.
        """
        client = client or self.appview_client()
        end = time.monotonic() + deadline
        while True:
            res = client.app.bsky.feed.get_posts({'uris': [uri]})
            if res.posts:
                return res.posts[0]
            if time.monotonic() > end:
                raise TimeoutError(f'{uri} not visible in the AppView after {deadline} s')
            time.sleep(interval)

    def wait_until(self, predicate: t.Callable[[], t.Any], deadline: float = 10.0, interval: float = 0.05,
                   what: str = 'condition'):
        """Poll ``predicate`` until it returns something truthy (returned)."""
        end = time.monotonic() + deadline
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f'{what} not met after {deadline} s')
            time.sleep(interval)


# --------------------------------------------------------------------------- pytest

# One network per process, shared by every copy of the fixture (the root
# conftest and a test module may both import it): reference-counted.
_shared_lock = threading.Lock()
_shared: t.Optional[BlueskyNetwork] = None
_shared_users = 0


def _acquire_shared(**kwargs: t.Any) -> BlueskyNetwork:
    global _shared, _shared_users
    with _shared_lock:
        if _shared is None:
            net = BlueskyNetwork(**kwargs)
            net.start()  # raises; nothing to clean up on failure
            print(
                f'\nbsky_network: started in {net.startup_seconds:.1f} s '
                f'(appview={net.has_appview}, pds={net.pds_url})',
                file=sys.stderr,
            )
            _shared = net
        _shared_users += 1
        return _shared


def _release_shared() -> None:
    global _shared, _shared_users
    with _shared_lock:
        _shared_users -= 1
        if _shared_users <= 0 and _shared is not None:
            net, _shared, _shared_users = _shared, None, 0
            net.stop()


def make_bsky_network_fixture(name: str = 'bsky_network', **kwargs: t.Any):
    """Build a session-scoped pytest fixture yielding a started BlueskyNetwork.

    Skips (clear message) only when ``tests/bsky/node_modules`` is missing and
    ``NUMPOLVILLE_REQUIRE_BSKY`` is not set; any other problem is an error.
    The network is stopped at the end of the session, whatever the outcome.
    """
    import pytest

    @pytest.fixture(scope='session', name=name)
    def _fixture():
        if not node_modules_installed() and not require_bsky():
            pytest.skip(
                'local Bluesky network unavailable: tests/bsky/node_modules is missing '
                '(run `npm ci --prefix tests/bsky`; set NUMPOLVILLE_REQUIRE_BSKY=1 to make this an error)'
            )
        net = _acquire_shared(**kwargs)
        try:
            yield net
        finally:
            _release_shared()

    return _fixture


try:
    import pytest as _pytest  # noqa: F401
except ImportError:  # standalone use without pytest
    bsky_network = None
else:
    bsky_network = make_bsky_network_fixture()


# --------------------------------------------------------------------------- CLI


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m tests.bsky_network',
        description='Run the local Bluesky network until SIGTERM/SIGINT.',
    )
    parser.add_argument('--state-file', required=True, help='where to write the JSON state (removed on stop)')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--appview', dest='appview', action='store_true', default=None,
                      help='require the AppView (PostgreSQL)')
    mode.add_argument(
        '--no-appview', dest='appview', action='store_false', default=None, help='PLC + PDS only'
    )
    parser.add_argument('--timeout', type=float, default=None, help='startup deadline in seconds')
    args = parser.parse_args(argv)

    stop_event = threading.Event()

    def _on_signal(signum, _frame):
        stop_event.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    net = BlueskyNetwork(appview=args.appview, state_file=args.state_file, start_timeout=args.timeout)
    try:
        net.start()
    except BlueskyNetworkError as e:
        print(f'bsky_network: {e}', file=sys.stderr)
        return 1
    try:
        print(f'bsky_network: ready in {net.startup_seconds:.1f} s; state in {net.state_file}', flush=True)
        print(json.dumps({k: v for k, v in net.state.items() if k != 'run_dir'}, indent=2), flush=True)
        while not stop_event.is_set():
            if net.proc is None or net.proc.poll() is not None:
                print('bsky_network: node process died\n' + net.log_tail(), file=sys.stderr)
                return 1
            stop_event.wait(1.0)
        print('bsky_network: stopping', flush=True)
    finally:
        net.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
