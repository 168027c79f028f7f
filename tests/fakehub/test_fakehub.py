"""
The emulator against GitHub itself: every JSON body it serves is validated against the response
schema GitHub's official OpenAPI description gives for that operation and status, and its
headers against recorded real GitHub responses (@octokit/fixtures: Link pagination, the 301 of
a renamed repository, error bodies, the tarball redirect). Then its own promises: git content
served exactly, ETags and 304s that cost no rate limit, truncation, the compare statuses and the
300-file cap, rate-limit exhaustion, bad credentials, and every fault switch.

Run: python3 -m pytest -q tests/fakehub   (needs `npm ci --prefix tests`: scripts/install-test-tools)
"""
import base64
import gzip
import http.client
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from fakehub.client import FakeHub
from fakehub import openapi

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="A U Thor", GIT_AUTHOR_EMAIL="a@example.com",
               GIT_COMMITTER_NAME="C O Mitter", GIT_COMMITTER_EMAIL="c@example.com",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", LC_ALL="C.UTF-8")

if not openapi.SPEC_PATH.exists():
    pytest.skip("GitHub's OpenAPI description is not installed: run scripts/install-test-tools",
                allow_module_level=True)


def git(cwd, *args, raw=False):
    r = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, check=True)
    return r.stdout if raw else r.stdout.decode().strip()


def write(root, rel, data, mode=None):
    p = Path(root) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    if mode:
        p.chmod(mode)


def commit(root, msg):
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", msg)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Repositories under REPOS/OWNER/REPO, and a running emulator serving them."""
    base = tmp_path_factory.mktemp("fakehub")
    repos = base / "repos"
    r = repos / "octo" / "hello"
    r.mkdir(parents=True)
    git(r, "init", "-q", "-b", "main")
    write(r, "README.md", "hello\n")
    write(r, "src/main.c", "int main(void) { return 0; }\n")
    write(r, "bin/run.sh", "#!/bin/sh\necho hi\n", 0o755)
    write(r, "ünï cødé.txt", "ünï\n")
    write(r, "big.bin", os.urandom(1000))
    os.symlink("README.md", r / "link")
    (r / "sub").mkdir()
    git(r, "update-index", "--add", "--cacheinfo",
        "160000,1111111111111111111111111111111111111111,sub")
    c1 = commit(r, "one")
    write(r, "README.md", "hello again\n")
    git(r, "mv", "src/main.c", "src/renamed.c")
    (r / "big.bin").unlink()
    c2 = commit(r, "two")
    git(r, "checkout", "-q", "-b", "feature/x")
    write(r, "feature.txt", "f\n")
    c3 = commit(r, "three")
    git(r, "checkout", "-q", "main")
    write(r, "main-only.txt", "m\n")
    c4 = commit(r, "four")
    # 130 more branches: two pages at per_page=100
    subprocess.run(["git", "update-ref", "--stdin"], cwd=r, env=GIT_ENV, check=True,
                   input="".join(f"create refs/heads/b{i:03d} {c1}\n" for i in range(130)).encode())
    e = repos / "octo" / "empty"
    e.mkdir(parents=True)
    git(e, "init", "-q", "-b", "main")
    # 400 files changed in one commit: the compare cap
    w = repos / "octo" / "wide"
    w.mkdir(parents=True)
    git(w, "init", "-q", "-b", "main")
    write(w, "seed", "s\n")
    w1 = commit(w, "seed")
    for i in range(400):
        write(w, f"d{i % 7}/f{i:03d}.txt", f"{i}\n")
    w2 = commit(w, "wide")
    hub = FakeHub.start(repos)
    yield {"hub": hub, "repo": r, "c": [c1, c2, c3, c4], "wide": (w, w1, w2), "repos": repos}
    hub.stop()


@pytest.fixture
def hub(world):
    h = world["hub"]
    h.clear_faults()
    h.config(tokens=None, truncate_at=100000, hang_seconds=30, renames={}, private=[])
    h.rate_limit(5000, reset_in=3600)
    h.reset()
    return h


def check(body, path, status=200, media="application/json"):
    errs = openapi.validate(body, openapi.response_schema(path, status, media))
    assert not errs, f"{path} {status} does not match GitHub's schema:\n" + "\n".join(errs[:20])


# ------------------------------------------------------------------------------------------
# conformance with GitHub's OpenAPI description


def test_every_json_endpoint_matches_githubs_openapi_schema(hub, world):
    c1, c2, c3, c4 = world["c"]
    tree1 = git(world["repo"], "rev-parse", f"{c1}^{{tree}}")
    blob = git(world["repo"], "rev-parse", f"{c1}:README.md")
    served = [
        ("/repos/octo/hello", "/repos/{owner}/{repo}"),
        ("/repos/octo/hello/branches?per_page=100", "/repos/{owner}/{repo}/branches"),
        ("/repos/octo/hello/branches/feature%2Fx", "/repos/{owner}/{repo}/branches/{branch}"),
        ("/repos/octo/hello/branches/main", "/repos/{owner}/{repo}/branches/{branch}"),
        (f"/repos/octo/hello/commits/{c2}", "/repos/{owner}/{repo}/commits/{ref}"),
        ("/repos/octo/hello/commits/main", "/repos/{owner}/{repo}/commits/{ref}"),
        (f"/repos/octo/hello/commits/{c1}", "/repos/{owner}/{repo}/commits/{ref}"),
        (f"/repos/octo/hello/git/commits/{c2}", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
        (f"/repos/octo/hello/git/trees/{tree1}", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
        (f"/repos/octo/hello/git/trees/{c4}?recursive=1",
         "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
        (f"/repos/octo/hello/git/blobs/{blob}", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
        (f"/repos/octo/hello/compare/{c1}...{c4}", "/repos/{owner}/{repo}/compare/{basehead}"),
        (f"/repos/octo/hello/compare/{c3}...{c4}", "/repos/{owner}/{repo}/compare/{basehead}"),
        ("/rate_limit", "/rate_limit"),
    ]
    for url, op in served:
        st, h, body = hub.get_json(url)
        assert st == 200, (url, st, body)
        assert h["content-type"].startswith("application/json"), url
        check(body, op)
    # Error answers, each against the schema GitHub documents for that status.
    errors = [
        ("/repos/octo/nope", "/repos/{owner}/{repo}", 404),
        ("/repos/octo/hello/branches/nope", "/repos/{owner}/{repo}/branches/{branch}", 404),
        ("/repos/octo/empty/commits/main", "/repos/{owner}/{repo}/commits/{ref}", 409),
        ("/repos/octo/empty/git/trees/main", "/repos/{owner}/{repo}/git/trees/{tree_sha}", 409),
        ("/repos/octo/hello/commits/nosuchref", "/repos/{owner}/{repo}/commits/{ref}", 422),
        ("/repos/octo/hello/git/blobs/" + "0" * 40, "/repos/{owner}/{repo}/git/blobs/{file_sha}",
         404),
    ]
    for url, op, status in errors:
        st, h, body = hub.get_json(url)
        assert st == status, (url, st, body)
        check(body, op, status)
    hub.rename("octo/old-name", "octo/hello")
    st, h, body = hub.get("/repos/octo/old-name", follow=False)
    assert st == 301
    check(json.loads(body), "/repos/{owner}/{repo}", 301)
    # The sha media type is the one documented for commits.
    st, h, body = hub.get(f"/repos/octo/hello/commits/{c1}",
                          {"Accept": "application/vnd.github.sha"})
    assert st == 200 and body.decode() == c1


def test_the_validator_rejects_what_github_would_not_send(hub):
    st, _, body = hub.get_json("/repos/octo/hello")
    schema = openapi.response_schema("/repos/{owner}/{repo}", 200)
    assert openapi.validate(body, schema) == []
    del body["default_branch"]
    body["private"] = "no"
    errs = openapi.validate(body, schema)
    assert any("default_branch" in e for e in errs) and any(".private" in e for e in errs)
    tree = openapi.response_schema("/repos/{owner}/{repo}/git/trees/{tree_sha}", 200)
    assert openapi.validate({"sha": "x", "tree": [{"path": "a"}]}, tree)


def test_the_emulator_content_is_gits(hub, world):
    r = world["repo"]
    c4 = world["c"][3]
    st, _, t = hub.get_json(f"/repos/octo/hello/git/trees/{c4}?recursive=1")
    assert st == 200 and t["truncated"] is False
    assert t["sha"] == git(r, "rev-parse", f"{c4}^{{tree}}")
    want = {}
    for rec in git(r, "ls-tree", "-r", "-t", "-z", "-l", c4, raw=True).split(b"\0"):
        if rec:
            meta, path = rec.split(b"\t", 1)
            mode, typ, sha, size = meta.decode().split()
            want[path.decode()] = (mode, typ, sha, None if size == "-" else int(size))
    got = {e["path"]: (e["mode"], e["type"], e["sha"], e.get("size")) for e in t["tree"]}
    assert got == want
    assert got["link"][0] == "120000" and got["bin/run.sh"][0] == "100755"
    assert got["sub"][:2] == ("160000", "commit") and got["src"][:2] == ("040000", "tree")
    assert "ünï cødé.txt" in got
    # Blobs: base64 in 60-character lines (the last one too ends with a newline), and raw.
    for e in t["tree"]:
        if e["type"] != "blob":
            continue
        st, h, b = hub.get_json(f"/repos/octo/hello/git/blobs/{e['sha']}")
        content = git(r, "cat-file", "-p", e["sha"], raw=True)
        assert b["encoding"] == "base64" and b["size"] == len(content) == e["size"]
        assert base64.b64decode(b["content"]) == content
        lines = b["content"].split("\n")
        assert lines[-1] == "" and all(len(x) == 60 for x in lines[:-2])
        assert 0 < len(lines[-2]) <= 60 or content == b""
        st, h, raw = hub.get(f"/repos/octo/hello/git/blobs/{e['sha']}",
                             {"Accept": "application/vnd.github.raw+json"})
        assert st == 200 and raw == content
        st, h, raw = hub.get(f"/repos/octo/hello/git/blobs/{e['sha']}",
                             {"Accept": "application/vnd.github.raw"})
        assert st == 200 and raw == content


def test_truncated_tree_cuts_entries_and_says_so(hub, world):
    c4 = world["c"][3]
    full = hub.get_json(f"/repos/octo/hello/git/trees/{c4}?recursive=1")[2]["tree"]
    hub.truncate_at(3)
    st, _, t = hub.get_json(f"/repos/octo/hello/git/trees/{c4}?recursive=1")
    assert st == 200 and t["truncated"] is True and t["tree"] == full[:3]
    check(t, "/repos/{owner}/{repo}/git/trees/{tree_sha}")
    # A subtree under the threshold, fetched non-recursively, is complete.
    src = [e for e in full if e["path"] == "src"][0]
    st, _, t = hub.get_json(f"/repos/octo/hello/git/trees/{src['sha']}")
    assert t["truncated"] is False and [e["path"] for e in t["tree"]] == ["renamed.c"]


def test_compare_statuses_renames_and_300_file_cap(hub, world):
    c1, c2, c3, c4 = world["c"]
    cmp = lambda a, b: hub.get_json(f"/repos/octo/hello/compare/{a}...{b}")[2]
    x = cmp(c1, c2)
    assert (x["status"], x["ahead_by"], x["behind_by"]) == ("ahead", 1, 0)
    files = {f["filename"]: f for f in x["files"]}
    assert files["src/renamed.c"]["status"] == "renamed"
    assert files["src/renamed.c"]["previous_filename"] == "src/main.c"
    assert files["big.bin"]["status"] == "removed"
    assert files["README.md"]["status"] == "modified"
    assert files["README.md"]["sha"] == git(world["repo"], "rev-parse", f"{c2}:README.md")
    assert cmp(c2, c1)["status"] == "behind"
    y = cmp(c3, c4)
    assert (y["status"], y["ahead_by"], y["behind_by"]) == ("diverged", 1, 1)
    assert [f["filename"] for f in y["files"]] == ["main-only.txt"]   # from the merge base
    assert cmp(c4, c4)["status"] == "identical" and cmp(c4, c4)["files"] == []
    assert cmp("main", "feature/x")["status"] == "diverged"
    w, w1, w2 = world["wide"]
    st, _, z = hub.get_json(f"/repos/octo/wide/compare/{w1}...{w2}")
    assert st == 200 and z["ahead_by"] == 1 and len(z["files"]) == 300
    check(z, "/repos/{owner}/{repo}/compare/{basehead}")


def test_commit_etag_sha_media_type_and_304_cost_nothing(hub, world):
    c4 = world["c"][3]
    sha_accept = {"Accept": "application/vnd.github.sha"}
    st, h, body = hub.get("/repos/octo/hello/commits/main", sha_accept)
    assert st == 200 and body.decode() == c4 and h["etag"].strip('W/"') == c4
    remaining = int(h["x-ratelimit-remaining"])
    # GitHub: the local SHA may be given as the ETag; an unchanged ref answers 304 for free.
    for inm in (f'"{c4}"', h["etag"]):
        st, h2, body = hub.get("/repos/octo/hello/commits/main", dict(sha_accept,
                                                                       **{"If-None-Match": inm}))
        assert st == 304 and body == b""
        assert int(h2["x-ratelimit-remaining"]) == remaining
    st, h, body = hub.get("/repos/octo/hello/commits/main",
                          dict(sha_accept, **{"If-None-Match": f'"{world["c"][0]}"'}))
    assert st == 200 and int(h["x-ratelimit-remaining"]) == remaining - 1
    # JSON answers carry ETags too, and honour them.
    st, h, _ = hub.get("/repos/octo/hello")
    st, h2, _ = hub.get("/repos/octo/hello", {"If-None-Match": h["etag"]})
    assert st == 304
    c = hub.counters()
    assert c["not_modified"] == 3 and c["by_status"]["304"] == 3
    assert c["by_kind"]["commit"] == 4 and c["by_kind"]["repo"] == 2
    log = hub.log()
    assert [e["status"] for e in log] == [200, 304, 304, 200, 200, 304]
    assert log[1]["if_none_match"] == f'"{c4}"' and log[0]["kind"] == "commit"


def test_branches_paginate_with_githubs_link_header(hub, world):
    fixture = json.loads((openapi.FIXTURES / "paginate-issues" / "normalized-fixture.json"
                          ).read_text())
    real_rels = [re.findall(r'rel="(\w+)"', f["headers"]["link"]) for f in fixture]
    real_link = fixture[1]["headers"]["link"]
    names = []
    url = "/repos/octo/hello/branches?per_page=100"
    pages = []
    while url:
        st, h, body = hub.get_json(url)
        assert st == 200
        names += [b["name"] for b in body]
        link = h.get("link")
        pages.append(link)
        m = re.search(r'<([^>]+)>; rel="next"', link or "")
        url = m.group(1) if m else None
    assert len(pages) == 2
    assert names == sorted(names) and len(names) == 132
    assert "feature/x" in names and "main" in names
    # The same grammar and rel order as a recorded GitHub answer, and links to /repositories/ID
    # with the query kept, as GitHub's are.
    assert re.findall(r'rel="(\w+)"', pages[0]) == real_rels[0]          # next, last
    assert re.findall(r'rel="(\w+)"', pages[1]) == real_rels[-1]         # prev, first
    part = r'<[^>]+>; rel="\w+"'
    assert re.fullmatch(f"{part}(, {part})*", pages[0])
    assert re.fullmatch(f"{part}(, {part})*", real_link)
    assert re.search(r"/repositories/\d+/branches\?per_page=100&page=2>", pages[0])
    # A middle page has all four, in GitHub's order.
    st, h, _ = hub.get_json("/repos/octo/hello/branches?per_page=10&page=3")
    assert re.findall(r'rel="(\w+)"', h["link"]) == real_rels[1]          # prev, next, last, first
    assert hub.get_json("/repos/octo/empty/branches")[2] == []


def test_renamed_repository_answers_301_like_github(hub, world):
    fixture = json.loads((openapi.FIXTURES / "rename-repository" / "normalized-fixture.json"
                          ).read_text())
    real = [f for f in fixture if f["method"] == "get" and f["status"] == 301][0]
    hub.rename("octo/old-name", "octo/hello")
    st, h, body = hub.get("/repos/octo/old-name", follow=False)
    assert st == 301
    body = json.loads(body)
    assert set(body) == set(real["response"])
    assert body["message"] == real["response"]["message"]
    assert re.search(r"/repositories/\d+$", h["location"])
    assert re.search(r"/repositories/\d+$", real["headers"]["location"])
    assert body["url"] == h["location"]
    st, h2, repo = hub.get_json(h["location"])
    assert st == 200 and repo["full_name"] == "octo/hello"
    # Deeper paths are redirected too, keeping their tail and query.
    st, h, _ = hub.get("/repos/octo/old-name/branches?per_page=5", follow=False)
    assert st == 301 and h["location"].endswith("/branches?per_page=5")
    st, _, b = hub.get_json(h["location"])
    assert st == 200 and len(b) == 5


def test_error_bodies_match_githubs(hub, world):
    st, h, body = hub.get_json("/repos/octo/nope")
    assert st == 404 and body["message"] == "Not Found" and body["status"] == "404"
    assert body["documentation_url"].startswith("https://docs.github.com/")
    real = json.loads((openapi.FIXTURES / "errors" / "normalized-fixture.json").read_text())[0]
    assert {"message", "documentation_url"} <= set(real["response"]) <= set(body) | {"errors"}
    st, h, body = hub.get_json("/repos/octo/empty/git/trees/main")
    assert st == 409 and body["message"] == "Git Repository is empty."
    st, h, body = hub.get_json("/repos/octo/empty")
    assert st == 200 and body["default_branch"] == "main"
    # A private repository is invisible (404) without a token, like GitHub's.
    hub.config(private=["octo/hello"])
    assert hub.get_json("/repos/octo/hello")[0] == 404
    st, _, body = hub.get_json("/repos/octo/hello", {"Authorization": "Bearer t"})
    assert st == 200 and body["private"] is True


def test_tarball_redirects_to_codeload_like_github(hub, world):
    fixture = json.loads((openapi.FIXTURES / "get-archive" / "normalized-fixture.json"
                          ).read_text())
    real302, real200 = fixture
    c4 = world["c"][3]
    st, h, body = hub.get(f"/repos/octo/hello/tarball/{c4}", follow=False)
    assert st == 302 == real302["status"] and body == b""
    assert "/_codeload/octo/hello/legacy.tar.gz/" in h["location"]
    assert "/legacy.tar.gz/" in real302["headers"]["location"]
    assert "x-ratelimit-remaining" in h
    st, h, data = hub.get(h["location"])
    assert st == 200 and h["content-type"] == real200["headers"]["content-type"]
    assert h.get("transfer-encoding") == "chunked" and "content-length" not in h  # streamed
    assert h["content-disposition"].startswith("attachment; filename=octo-hello-")
    tf = tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)))
    names = tf.getnames()
    top = f"octo-hello-{c4[:7]}"
    assert all(n == top or n.startswith(top + "/") for n in names)
    assert tf.extractfile(f"{top}/README.md").read() == b"hello again\n"
    assert tf.getmember(f"{top}/link").issym() and tf.getmember(f"{top}/link").linkname == \
        "README.md"
    assert tf.getmember(f"{top}/bin/run.sh").mode & 0o111
    c = hub.counters()["by_kind"]
    assert c["tarball"] == 1 and c["codeload"] == 1
    # Damaged downloads: cut mid-stream, or a clean end after half a gzip stream.
    url = hub.log()[-1]["path"]
    hub.fault("codeload", "cut")
    with pytest.raises(http.client.IncompleteRead):
        raw_get(hub, url)
    hub.fault("codeload", "truncated_json")
    st, h, part = raw_get(hub, url)
    assert st == 200 and 0 < len(part) < len(data)
    with pytest.raises((EOFError, OSError)):
        gzip.decompress(part)


# ------------------------------------------------------------------------------------------
# credentials and rate limits


def test_bad_token_is_401_and_anonymous_is_allowed(hub):
    hub.tokens(["good"])
    st, h, body = hub.get_json("/repos/octo/hello", {"Authorization": "Bearer bad"})
    assert st == 401 and body["message"] == "Bad credentials"
    assert hub.get_json("/repos/octo/hello", {"Authorization": "Bearer good"})[0] == 200
    assert hub.get_json("/repos/octo/hello", {"Authorization": "token good"})[0] == 200
    assert hub.get_json("/repos/octo/hello")[0] == 200


def test_rate_limit_headers_exhaustion_and_reset(hub):
    hub.rate_limit(limit=3, reset_in=2)
    seen = []
    for _ in range(4):
        st, h, body = hub.get_json("/repos/octo/hello")
        seen.append((st, h["x-ratelimit-remaining"], h["x-ratelimit-used"]))
        assert h["x-ratelimit-limit"] == "3" and h["x-ratelimit-resource"] == "core"
        assert int(h["x-ratelimit-reset"]) >= int(time.time())
    assert seen == [(200, "2", "1"), (200, "1", "2"), (200, "0", "3"), (403, "0", "3")]
    assert "rate limit exceeded" in body["message"]
    st, _, rl = hub.get_json("/rate_limit")     # free, and says the same
    assert st == 200 and rl["resources"]["core"]["remaining"] == 0
    time.sleep(max(0, int(h["x-ratelimit-reset"]) - time.time()) + 0.2)
    st, h, _ = hub.get_json("/repos/octo/hello")
    assert st == 200 and h["x-ratelimit-remaining"] == "2"


# ------------------------------------------------------------------------------------------
# faults


def raw_get(hub, path, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=timeout)
    conn.request("GET", path)
    r = conn.getresponse()
    try:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def test_faults_hit_the_nth_request_of_a_kind_only(hub, world):
    blob = git(world["repo"], "rev-parse", f"{world['c'][0]}:README.md")
    path = f"/repos/octo/hello/git/blobs/{blob}"
    hub.fault("blob", "503", nth=2)
    hub.fault("repo", "500", nth=1)
    assert raw_get(hub, path)[0] == 200
    st, h, body = raw_get(hub, path)
    assert st == 503 and json.loads(body)["message"]
    assert raw_get(hub, path)[0] == 200
    assert raw_get(hub, "/repos/octo/hello")[0] == 500
    assert raw_get(hub, "/repos/octo/hello")[0] == 200
    log = hub.log()
    assert [(e["kind"], e["status"], e["fault"]) for e in log] == [
        ("blob", 200, None), ("blob", 503, "503"), ("blob", 200, None), ("repo", 500, "500"),
        ("repo", 200, None)]


def test_fault_cut_truncated_json_secondary_hang(hub, world):
    hub.fault("repo", "cut")
    with pytest.raises(http.client.IncompleteRead):
        raw_get(hub, "/repos/octo/hello")
    hub.fault("repo", "truncated_json")
    st, h, body = raw_get(hub, "/repos/octo/hello")
    assert st == 200 and int(h["content-length"]) == len(body)
    with pytest.raises(ValueError):
        json.loads(body)
    hub.fault("branches", "secondary")
    st, h, body = raw_get(hub, "/repos/octo/hello/branches")
    assert st == 403 and h["retry-after"] == "1"
    assert "secondary rate limit" in json.loads(body)["message"]
    hub.fault("branches", "secondary_429")
    assert raw_get(hub, "/repos/octo/hello/branches")[0] == 429
    hub.config(hang_seconds=3)
    hub.fault("commit", "hang")
    t0 = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError)):
        raw_get(hub, "/repos/octo/hello/commits/main", timeout=0.5)
    assert time.monotonic() - t0 < 2
    assert raw_get(hub, "/repos/octo/hello/commits/main")[0] == 200
    hub.fault("*", "primary", nth=1)
    st, h, _ = raw_get(hub, "/repos/octo/hello")
    assert st == 403 and h["x-ratelimit-remaining"] == "0"
