"""
ssh git sources against a real, private OpenSSH server: every ssh connection projsync makes (the
listing and the `git fetch`) trusts the host keys of its own known_hosts (<data dir>/ssh/
known_hosts), records a new host's key there on first contact, fails a sync whose host key
changed (naming the host, storing nothing), and logs in with PROJSYNC_SSH_KEY or
<data dir>/ssh/id_ed25519 without any agent. The tests' HOME is empty: nothing comes from
~/.ssh, as under the packaged service (HOME=/).

The server is `sshd -i` (inetd mode) on a loopback port bound here, one sshd per connection,
as tests/integration/git_daemon.py does for git daemon: no port is picked and released (other
tests bind ports meanwhile), and the host key can be swapped between two connections. It logs
in as the user running the tests (root in CI, which needs /run/sshd).
"""
import getpass
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import one_error_line
from tcp_relay import Listener

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f",
                    str(path)], check=True, capture_output=True)
    return Path(str(path) + ".pub").read_text().split()[:2]


class SshServer(Listener):
    """sshd -i for each connection to 127.0.0.1:port, with the host key `host_key` (a path,
    read at each connection) and `authorized` as the only authorized keys."""

    def __init__(self, base):
        # Set before the listener starts: its accept thread reads them at once.
        self.base = base
        self.config = base / "sshd_config"
        self.log = base / "sshd.log"
        self.authorized = base / "authorized_keys"
        self.authorized.touch()
        self.procs = []
        self.set_host_key(base / "host_a")
        super().__init__(backlog=16)

    def set_host_key(self, path):
        """Serves with the key at `path` (made when missing) from the next connection on;
        returns its public half (type, base64)."""
        if not path.exists():
            keygen(path)
        # UsePAM no: no PAM stack to set up; StrictModes no: the temp dir is not root's own.
        self.config.write_text(
            f"HostKey {path}\nAuthorizedKeysFile {self.authorized}\nPidFile none\n"
            "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "LogLevel VERBOSE\n")
        self.host_key = path
        return Path(str(path) + ".pub").read_text().split()[:2]

    def on_connect(self, c):
        with c, open(self.log, "ab") as log:
            self.procs.append(subprocess.Popen(
                [SSHD, "-i", "-e", "-f", str(self.config)],
                stdin=c.fileno(), stdout=c.fileno(), stderr=log))
        self.procs = [p for p in self.procs if p.poll() is None]

    def close(self):
        super().close()
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)


def key_in_data_dir(ssh_dir, sshd):
    """The client's key where projsync looks without PROJSYNC_SSH_KEY: <data dir>/ssh."""
    ssh_dir.mkdir(mode=0o700)
    shutil.copy(sshd.client_key, ssh_dir / "id_ed25519")
    os.chmod(ssh_dir / "id_ed25519", 0o600)


def sshd_unusable_reason():
    if not os.access(SSHD, os.X_OK):
        return "sshd is not installed (openssh-server; scripts/install-deps --test installs it)"
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return "ssh is not installed (openssh-client)"
    if os.getuid() == 0 and not os.path.isdir("/run/sshd"):
        # sshd run by root separates privileges into this directory (compiled in); the
        # package's tmpfiles.d makes it at boot, which a container never had.
        try:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        except OSError as e:
            return f"sshd needs /run/sshd when run by root, and it cannot be made: {e}"
    return None


@pytest.fixture
def sshd(tmp_path):
    reason = sshd_unusable_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    base = tmp_path / "sshd"
    base.mkdir()
    server = SshServer(base)
    client = base / "client"
    server.authorized.write_text(" ".join(keygen(client)) + "\n")
    server.client_key = client
    # Can the test's user log in at all (a locked account cannot without PAM)?
    probe = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", f"UserKnownHostsFile={base / 'probe_known_hosts'}", "-o", "IdentitiesOnly=yes",
         "-i", str(client), "-p", str(server.port), f"{getpass.getuser()}@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    if probe.returncode != 0:
        server.close()
        reason = (f"sshd runs but {getpass.getuser()} cannot log in: "
                  f"{probe.stderr.strip()[-300:]} / {server.log.read_text()[-500:]}")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield server
    server.close()


@pytest.fixture
def upstream(make_repo, sshd):
    """(work repo, ssh URL of its bare upstream); `work.push()` updates the upstream."""
    work = make_repo("work")
    bare = make_repo("served/up.git", bare=True)
    work.push = lambda: work.git("push", "-q", str(bare.path), "HEAD:refs/heads/main")
    url = f"ssh://{getpass.getuser()}@127.0.0.1:{sshd.port}{bare.path}"
    return work, url


@pytest.fixture
def pss(ps):
    """ps without an ssh agent: only the key projsync is given may log in."""
    ps.env.pop("SSH_AUTH_SOCK", None)
    return ps


def known_hosts(ps):
    return Path(ps.db).parent / "ssh" / "known_hosts"


def test_host_key_is_recorded_then_held_to(pss, upstream, sshd):
    work, url = upstream
    pss.env["PROJSYNC_SSH_KEY"] = str(sshd.client_key)
    work.write("a.txt", "one\n")
    c1 = work.commit("one")
    work.push()
    kh = known_hosts(pss)
    assert not kh.exists()

    # The check of `project add` lists the branches: the first connection records the key.
    pss.add("p", url)
    host = f"[127.0.0.1]:{sshd.port}"
    key_a = " ".join(sshd.set_host_key(sshd.base / "host_a"))
    assert kh.read_text() == f"{host} {key_a}\n"
    s = pss.sync("p")
    assert s["commit"] == c1
    assert [f["path"] for f in pss.files("p")] == ["a.txt"]

    work.write("b.txt", "two\n")
    c2 = work.commit("two")
    work.push()
    s = pss.sync("p")
    assert s["commit"] == c2
    assert kh.read_text() == f"{host} {key_a}\n"
    files = pss.files("p")
    assert [f["path"] for f in files] == ["a.txt", "b.txt"]

    # Another server answers at that address: the next sync fails, says so, stores nothing.
    sshd.set_host_key(sshd.base / "host_b")
    work.write("c.txt", "three\n")
    work.commit("three")
    work.push()
    s = pss.sync("p", expect="failed")
    assert s["error"]["code"] == "host_key_changed", s
    msg = s["error"]["message"]
    assert f"the ssh host key of {host} has changed" in msg and str(kh) in msg, msg
    assert f"ssh-keygen -R '{host}' -f {kh}" in msg, msg
    assert pss.project("p")["last_commit"] == c2
    assert pss.files("p") == files
    assert kh.read_text() == f"{host} {key_a}\n"
    # Also the check of a new project, and with the key taken from the data directory.
    r = pss("project", "add", "q", url)
    assert r.rc == 1 and one_error_line(r.err), r
    assert f"the ssh host key of {host} has changed" in r.err, r

    # The operator accepts the new key as the message says: syncs go on.
    subprocess.run(["ssh-keygen", "-R", host, "-f", str(kh)], check=True, capture_output=True)
    s = pss.sync("p")
    assert [f["path"] for f in pss.files("p")] == ["a.txt", "b.txt", "c.txt"]
    key_b = " ".join(sshd.set_host_key(sshd.base / "host_b"))
    assert kh.read_text() == f"{host} {key_b}\n"


def test_key_in_the_data_directory_needs_no_agent(pss, upstream, sshd):
    work, url = upstream
    work.write("a.txt", "one\n")
    c1 = work.commit("one")
    work.push()
    key_in_data_dir(Path(pss.db).parent / "ssh", sshd)
    pss.add("p", url)
    assert pss.sync("p")["commit"] == c1


def test_without_a_key_the_login_failure_says_how_to_give_one(pss, upstream, sshd):
    work, url = upstream
    work.write("a.txt", "one\n")
    work.commit("one")
    work.push()
    r = pss("project", "add", "p", url)
    assert r.rc == 1 and one_error_line(r.err), r
    assert "the ssh server refused the login" in r.err and "PROJSYNC_SSH_KEY" in r.err, r
    assert "id_ed25519" in r.err, r


def test_strict_accepts_only_known_hosts(pss, upstream, sshd):
    work, url = upstream
    work.write("a.txt", "one\n")
    c1 = work.commit("one")
    work.push()
    pss.env.update(PROJSYNC_SSH_KEY=str(sshd.client_key), PROJSYNC_SSH_STRICT="yes")
    host = f"[127.0.0.1]:{sshd.port}"
    r = pss("project", "add", "p", url)
    assert r.rc == 1 and one_error_line(r.err), r
    assert f"the ssh host key of {host} is not known" in r.err, r
    kh = known_hosts(pss)
    assert not kh.exists() or kh.read_text() == ""
    # Pinned by the operator beforehand: accepted.
    key_a = " ".join(sshd.set_host_key(sshd.base / "host_a"))
    kh.write_text(f"{host} {key_a}\n")
    pss.add("p", url)
    assert pss.sync("p")["commit"] == c1


@pytest.mark.parametrize("var,value,words", [
    ("PROJSYNC_SSH_STRICT", "maybe", "PROJSYNC_SSH_STRICT must be yes or no"),
    ("PROJSYNC_SSH_KEY", "/nonexistent/key", "PROJSYNC_SSH_KEY: cannot read /nonexistent/key"),
])
def test_bad_ssh_settings_are_refused_before_any_work(pss, repo, var, value, words):
    repo.write("a.txt", "one\n")
    repo.commit("one")
    r = pss("project", "add", "p", str(repo.path), env={var: value})
    assert r.rc == 2 and one_error_line(r.err) and words in r.err, r
    assert pss("project", "show", "p").rc != 0


def test_an_unknown_scheme_is_never_taken_for_ssh(ps):
    """libgit2 1.5 took any remote with a ':' that is not git/http/https/file for ssh
    ("foo://h:p/x" connected to h:p) and would have checked its host key its own way."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    r = ps("project", "add", "p", f"foo://127.0.0.1:{port}/x")
    assert r.rc != 0 and one_error_line(r.err), r
    assert "transport 'foo' not allowed" in r.err, r
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


def test_a_group_readable_key_is_named(pss, upstream, sshd):
    work, url = upstream
    work.write("a.txt", "one\n")
    work.commit("one")
    work.push()
    key = pss.tmp / "loose_key"
    shutil.copy(sshd.client_key, key)
    os.chmod(key, 0o640)
    pss.env["PROJSYNC_SSH_KEY"] = str(key)
    r = pss("project", "add", "p", url)
    assert r.rc == 1 and one_error_line(r.err), r
    assert f"ssh refused to use the key {key}: others may read it" in r.err, r


@pytest.mark.parametrize("data_dir", ["", "a:b"])
def test_a_repository_around_the_store_lends_no_configuration(pss, upstream, sshd, make_repo,
                                                              tmp_path, data_dir):
    """The listing runs git in <data dir>/ssh: a repository around the store (`make run` keeps
    its store in the checkout's .run/) must not rewrite the URL (insteadOf) or else steer git,
    whatever characters the path holds (GIT_CEILING_DIRECTORIES, a ':'-separated list, would
    split "a:b")."""
    if data_dir:
        from conftest import Projsync
        pss = Projsync(tmp_path / data_dir)
        pss.env.pop("SSH_AUTH_SOCK", None)
    work, url = upstream
    work.write("a.txt", "real\n")
    real = work.commit("real")
    work.push()
    decoy = make_repo("decoy")
    decoy.git("checkout", "-q", "-b", "decoy")
    decoy.write("a.txt", "decoy\n")
    decoy.commit("decoy")
    store_dir = Path(pss.db).parent
    subprocess.run(["git", "init", "-q", str(store_dir)], check=True)
    subprocess.run(["git", "-C", str(store_dir), "config", f"url.{decoy.url}.insteadOf", url],
                   check=True)
    pss.env["PROJSYNC_SSH_KEY"] = str(sshd.client_key)
    pss.add("p", url)
    s = pss.sync("p")
    assert (s["branch"], s["commit"]) == ("main", real), s
    assert pss.json("branches", "p") == [{"name": "main", "default": True, "selected": True}]


def test_the_server_syncs_over_ssh_as_the_service_would(pss, upstream, sshd):
    """`serve` as the package runs it: no agent, an empty HOME, the key in its data directory."""
    from server_util import Server, wait_status
    work, url = upstream
    work.write("a.txt", "one\n")
    c1 = work.commit("one")
    work.push()
    key_in_data_dir(Path(pss.db).parent / "ssh", sshd)
    srv = Server(pss, "--workers", "1")
    try:
        st, _, p = srv.post("/api/v1/projects", {"name": "p", "source": url})
        assert st == 201, p
        st, _, s = srv.post("/api/v1/projects/p/sync")
        assert st == 202, s
        s = wait_status(srv, s["id"], ("succeeded", "failed"))
        assert (s["status"], s["commit"]) == ("succeeded", c1), s

        sshd.set_host_key(sshd.base / "host_b")
        work.write("b.txt", "two\n")
        work.commit("two")
        work.push()
        st, _, s = srv.post("/api/v1/projects/p/sync")
        assert st == 202, s
        s = wait_status(srv, s["id"], ("succeeded", "failed"))
        assert s["status"] == "failed" and s["error"]["code"] == "host_key_changed", s
        assert f"[127.0.0.1]:{sshd.port}" in s["error"]["message"], s
        st, _, p = srv.get("/api/v1/projects/p")
        assert p["last_commit"] == c1, p
        st, _, e = srv.post("/api/v1/projects", {"name": "q", "source": url})
        assert st == 502 and e["error"]["code"] == "host_key_changed", (st, e)
    finally:
        srv.stop()


def test_a_missing_repository_is_refused_and_a_dead_host_unreachable(pss, upstream, sshd):
    """The listing tells a host that answered "no such repository" (refused: exit 2, as the
    libgit2 listing of other remotes) from one that could not be reached (exit 1, retry)."""
    _, url = upstream
    pss.env["PROJSYNC_SSH_KEY"] = str(sshd.client_key)
    r = pss("project", "add", "p", url.replace("up.git", "nothing.git"))
    assert r.rc == 2 and one_error_line(r.err), r
    assert "does not appear to be a git repository" in r.err, r
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]  # bound, never listening: connections are refused
    r = pss("project", "add", "p", f"ssh://{getpass.getuser()}@127.0.0.1:{port}/x.git")
    dead.close()
    assert r.rc == 1 and one_error_line(r.err), r
    assert f"ssh: connect to host 127.0.0.1 port {port}: Connection refused" in r.err, r


def test_odd_characters_in_the_data_directory_and_key_path(tmp_path, upstream, sshd):
    """The known_hosts and key paths go through the shell git runs GIT_SSH_COMMAND with and
    ssh's option parser, which splits on blanks and expands %-tokens."""
    from conftest import Projsync
    odd = tmp_path / "a b %h 'c' \"d\""
    p = Projsync(odd)
    p.env.pop("SSH_AUTH_SOCK", None)
    key = odd / "k %u 'e'"
    shutil.copy(sshd.client_key, key)
    os.chmod(key, 0o600)
    p.env["PROJSYNC_SSH_KEY"] = str(key)
    work, url = upstream
    work.write("a.txt", "one\n")
    c1 = work.commit("one")
    work.push()
    p.add("p", url)
    assert p.sync("p")["commit"] == c1
    key_a = " ".join(sshd.set_host_key(sshd.base / "host_a"))
    assert known_hosts(p).read_text() == f"[127.0.0.1]:{sshd.port} {key_a}\n"


def test_a_relative_data_directory(pss, upstream, sshd):
    """--db with a relative path: the listing runs git in <data dir>/ssh, and its ssh must still
    find the key and known_hosts of that directory, not ones relative to it, and git its
    empty repository (GIT_DIR) there."""
    work, url = upstream
    work.write("a.txt", "one\n")
    c1 = work.commit("one")
    work.push()
    ssh_dir = pss.tmp / "store" / "ssh"
    key_in_data_dir(ssh_dir, sshd)

    def run(*args):
        from conftest import BIN, Result, check_sanitizers
        r = subprocess.run([BIN, "--db", "store/projsync.db"] + list(args), cwd=pss.tmp,
                           env=pss.env, capture_output=True, timeout=120)
        res = Result(args, r.returncode, r.stdout, r.stderr.decode("utf-8", "replace"))
        check_sanitizers(res)
        return res

    r = run("project", "add", "p", url)
    assert r.rc == 0, r
    key_a = " ".join(sshd.set_host_key(sshd.base / "host_a"))
    assert (ssh_dir / "known_hosts").read_text() == f"[127.0.0.1]:{sshd.port} {key_a}\n"
    assert not (ssh_dir / "store").exists()
    r = run("sync", "p")
    assert r.rc == 0, r
    assert pss.project("p")["last_commit"] == c1


def test_a_key_gone_since_start_up_fails_only_the_ssh_sources(pss, upstream, sshd, make_repo):
    """The ssh settings are read for ssh remotes only: PROJSYNC_SSH_KEY naming a key removed
    while the server runs fails the ssh source with the key's name, and a file:// source (git's
    fetch too, never ssh) still syncs."""
    from server_util import Server, wait_status
    work, url = upstream
    work.write("a.txt", "one\n")
    work.commit("one")
    work.push()
    other = make_repo("other")
    other.write("x.txt", "one\n")
    other.commit("one")
    key = pss.tmp / "gone_key"
    shutil.copy(sshd.client_key, key)
    os.chmod(key, 0o600)
    srv = Server(pss, "--workers", "1", env={"PROJSYNC_SSH_KEY": str(key)})
    try:
        for name, source in (("s", url), ("f", f"file://{other.path}")):
            st, _, p = srv.post("/api/v1/projects", {"name": name, "source": source})
            assert st == 201, p
        key.unlink()
        other.write("x.txt", "two\n")
        c2 = other.commit("two")
        st, _, s = srv.post("/api/v1/projects/f/sync")
        assert st == 202, s
        s = wait_status(srv, s["id"], ("succeeded", "failed"))
        assert (s["status"], s["commit"]) == ("succeeded", c2), s
        st, _, s = srv.post("/api/v1/projects/s/sync")
        assert st == 202, s
        s = wait_status(srv, s["id"], ("succeeded", "failed"))
        assert s["status"] == "failed" and s["error"]["code"] == "bad_ssh_key", s
        assert f"PROJSYNC_SSH_KEY: cannot read {key}" in s["error"]["message"], s
    finally:
        srv.stop()
