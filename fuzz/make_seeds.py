#!/usr/bin/env python3
"""Writes the seed inputs of the GitHub and API fuzz targets into fuzz/corpus/ from real
answers: a small git repository (its trees, blobs and `git archive` tarballs, in the shapes
GitHub's REST API gives them) and the recorded GitHub answers of @octokit/fixtures
(tests/node_modules, scripts/install-test-tools). Run once from the repository root; the output
is committed, so tests never need this script. Inputs a fuzz run found are kept beside them."""
import gzip, hashlib, hmac, io, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
FIX = os.path.join(ROOT, "tests", "node_modules", "@octokit", "fixtures", "scenarios",
                   "api.github.com")


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def git(repo, *args, data=None):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          input=data).stdout


def fixture(name):
    with open(os.path.join(FIX, name, "normalized-fixture.json")) as f:
        return json.load(f)


def section(kind, status, body, headers=()):
    h = "".join(f"{k}: {v}\n" for k, v in headers)
    b = body if isinstance(body, str) else json.dumps(body)
    return f"@@@ {kind} {status}\n{h}\n{b}\n"


JSON = ("Content-Type", "application/json; charset=utf-8")
RATE = [("x-ratelimit-limit", "5000"), ("x-ratelimit-remaining", "4999"),
        ("x-ratelimit-used", "1"), ("x-ratelimit-reset", "1700000000")]


def main():
    tmp = tempfile.mkdtemp()
    repo = os.path.join(tmp, "r")
    os.makedirs(os.path.join(repo, "bin"))
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    for path, text in (("README.md", "hello\n"), ("bin/run", "#!/bin/sh\necho hi\n"), ("empty", "")):
        with open(os.path.join(repo, path), "w") as f:
            f.write(text)
    os.chmod(os.path.join(repo, "bin/run"), 0o755)
    os.symlink("README.md", os.path.join(repo, "link"))
    env = ["-c", "user.name=f", "-c", "user.email=f@f"]
    git(repo, "add", "-A")
    git(repo, *env, "commit", "-q", "-m", "one")
    base = git(repo, "rev-parse", "HEAD").decode().strip()
    with open(os.path.join(repo, "README.md"), "a") as f:
        f.write("more\n")
    with open(os.path.join(repo, "new.txt"), "w") as f:
        f.write("new\n")
    git(repo, "add", "-A")
    git(repo, *env, "commit", "-q", "-m", "two")
    head = git(repo, "rev-parse", "HEAD").decode().strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").decode().strip()

    # The tarball target: GitHub's archive is `git archive` with an "owner-repo-sha/" prefix.
    first = git(repo, "rev-parse", "HEAD~1").decode().strip()
    prefix = f"o-r-{first[:7]}/"
    tar = git(repo, "archive", "--format=tar", f"--prefix={prefix}", first)
    put("fuzz_github_tar", "archive.tar", tar)
    put("fuzz_github_tar", "archive.tar.gz", gzip.compress(tar, mtime=0))
    put("fuzz_github_tar", "truncated.tar.gz", gzip.compress(tar, mtime=0)[:300])
    for fx in fixture("get-archive"):
        if fx["status"] == 200 and isinstance(fx["response"], str):
            put("fuzz_github_tar", "octokit_archive.tar.gz", bytes.fromhex(fx["response"]))

    # Trees as GitHub lists them (recursive), from git ls-tree.
    def gh_tree(commit):
        entries = []
        for line in git(repo, "ls-tree", "-r", "-t", "-l", commit).decode().splitlines():
            meta, path = line.split("\t", 1)
            mode, typ, sha, size = meta.split()
            e = {"path": path, "mode": mode, "type": typ, "sha": sha,
                 "url": f"{{API}}/repos/o/r/git/{typ}s/{sha}"}
            if typ == "blob":
                e["size"] = int(size)
            entries.append(e)
        return {"sha": git(repo, "rev-parse", commit + "^{tree}").decode().strip(),
                "url": "{API}/repos/o/r/git/trees/x", "tree": entries, "truncated": False}

    files = []
    for line in git(repo, "diff", "--numstat", base, head).decode().splitlines():
        a, d, path = line.split("\t")
        st = "added" if path == "new.txt" else "modified"
        sha = git(repo, "rev-parse", f"{head}:{path}").decode().strip()
        files.append({"sha": sha, "filename": path, "status": st, "additions": int(a),
                      "deletions": int(d), "changes": int(a) + int(d)})
    compare = {"status": "ahead", "ahead_by": 1, "behind_by": 0, "total_commits": 1,
               "commits": [{"sha": head, "commit": {"tree": {"sha": tree}}}], "files": files}

    octo_repo = next(fx for fx in fixture("get-repository") if fx["status"] == 200)["response"]
    octo_repo = dict(octo_repo, default_branch="main")
    branch = {"name": "main", "commit": {"sha": head, "commit": {"tree": {"sha": tree}}}}
    blobs = {}
    for e in gh_tree(head)["tree"]:
        if e["type"] == "blob":
            blobs[e["sha"]] = git(repo, "cat-file", "blob", e["sha"])

    happy = (section("repo", 200, octo_repo, [JSON] + RATE)
             + section("branches", 200, [{"name": "dev"}, {"name": "main"}],
                       [JSON, ("Link", '<{API}/repos/o/r/branches?per_page=100&page=2>; rel="next", '
                                       '<{API}/repos/o/r/branches?per_page=100&page=2>; rel="last"')])
             + section("branches", 200, [{"name": "feature/x"}], [JSON])
             + section("branch", 200, branch, [JSON] + RATE)
             + section("commit", 200, head, [("Content-Type", "application/vnd.github.sha")])
             + section("tree", 200, gh_tree(head), [JSON])
             + section("compare", 200, compare, [JSON]))
    put("fuzz_github_source", "happy", happy)
    tail = "".join(section("blob", 200, blobs[s].decode(), [("Content-Type", "application/vnd.github.raw")])
                   for s in blobs)
    put("fuzz_github_source", "happy_blobs", happy + tail)
    put("fuzz_github_source", "happy_tarball",
        happy.encode() + b"@@@ tarball 200\nContent-Type: application/x-gzip\n\n" + gzip.compress(tar, mtime=0))
    # The base64 JSON form of a blob.
    import base64
    s0 = next(iter(blobs))
    put("fuzz_github_source", "blob_json", happy + section("blob", 200, {
        "sha": s0, "encoding": "base64", "content": base64.encodebytes(blobs[s0]).decode()}, [JSON]))
    put("fuzz_github_source", "not_modified", section("repo", 200, octo_repo, [JSON])
        + section("commit", 304, "", [("ETag", f'"{head}"')]))
    put("fuzz_github_source", "empty_repo", section("repo", 200, {"default_branch": "main"}, [JSON])
        + section("branch", 404, {"message": "Branch not found"}, [JSON])
        + section("commit", 409, {"message": "Git Repository is empty."}, [JSON]))
    errs = [fx for fx in fixture("errors") if fx["status"] >= 400]
    err = errs[0]["response"] if errs else {"message": "Validation Failed"}
    put("fuzz_github_source", "errors",
        section("repo", 401, {"message": "Bad credentials"}, [JSON])
        + section("repo", 403, {"message": "API rate limit exceeded"}, [JSON, ("x-ratelimit-remaining", "0"),
                                                                          ("x-ratelimit-reset", "1")])
        + section("repo", 429, err, [JSON, ("retry-after", "0")])
        + section("repo", 500, "oops", [])
        + section("repo", 502, "<html>bad gateway</html>", [("Content-Type", "text/html")]))
    put("fuzz_github_source", "redirect", section("repo", 301, "", [("Location", "{API}/repositories/1000")])
        + section("other", 200, octo_repo, [JSON]))
    put("fuzz_github_source", "truncated_tree", section("repo", 200, octo_repo, [JSON])
        + section("commit", 200, head, [])
        + section("tree", 200, dict(gh_tree(head), truncated=True), [JSON])
        + section("tree", 200, gh_tree(head), [JSON]))

    # The pure parsers: selector byte + payload.
    put("fuzz_github_parse", "tree", b"\x00" + json.dumps(gh_tree(head)).encode())
    put("fuzz_github_parse", "compare_with_head",
        b"\x01" + json.dumps(compare).encode() + b"\x00" + json.dumps(gh_tree(head)).encode())
    rename = dict(compare, files=[{"sha": files[0]["sha"], "filename": "moved/README.md",
                                   "previous_filename": "README.md", "status": "renamed", "changes": 0}])
    put("fuzz_github_parse", "compare_rename", b"\x01" + json.dumps(rename).encode())
    for fx in fixture("paginate-issues"):
        link = fx.get("headers", {}).get("link")
        if link:
            put("fuzz_github_parse", "link_octokit", b"\x02" + link.encode())
            break
    put("fuzz_github_parse", "rate_headers", b"\x03" + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in RATE + [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"),
                                                      ("X-RateLimit-Remaining", "-5")]))
    put("fuzz_github_parse", "escape", b"\x04feature/x y%\xc3\xa9")

    # API requests through the router.
    def req(method, path, body=None, headers=(), auth=True):
        h = [("Host", "localhost")] + ([("Authorization", "Bearer fuzz-token")] if auth else []) + list(headers)
        if body is not None:
            h.append(("Content-Type", "application/json"))
        text = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h) + "\r\n"
        return text + (body if isinstance(body, str) else json.dumps(body) if body is not None else "")
    api = {
        "list_projects": req("GET", "/api/v1/projects"),
        "create_project": req("POST", "/api/v1/projects", {"name": "two", "source": "{REPO}",
                                                           "memory_globs": ["docs/**"], "max_blob_size": 10}),
        "create_bad": req("POST", "/api/v1/projects", {"name": "-x", "source": "relative", "extra": 1}),
        "project": req("GET", "/api/v1/projects/demo"),
        "branches": req("GET", "/api/v1/projects/demo/branches"),
        "sync": req("POST", "/api/v1/projects/demo/sync", {"branch": "main"}),
        "syncs_page": req("GET", "/api/v1/projects/demo/syncs?limit=2&before=5"),
        "sync_get": req("GET", "/api/v1/syncs/1"),
        "sync_changes": req("GET", "/api/v1/syncs/1/changes?limit=1&after=README.md"),
        "cancel": req("POST", "/api/v1/syncs/1/cancel", ""),
        "files": req("GET", "/api/v1/projects/demo/files?prefix=src/&at=1&limit=10"),
        "file": req("GET", "/api/v1/projects/demo/file?path=src%2Fa.c&at=1"),
        "events_lei": req("GET", "/api/v1/events/project-sync/1", headers=[("Last-Event-ID", "3")]),
        "events_query": req("GET", "/api/v1/events/project-sync/1?access_token=fuzz-token&last_event_id=-1", auth=False),
        "memory_search": req("GET", "/api/v1/projects/demo/memory?q=deploy&status=all&include_superseded=true&offset=0&limit=5"),
        "memory_add": req("POST", "/api/v1/projects/demo/memory", {"title": "t", "content": "c", "tags": ["a"]}),
        "memory_get": req("GET", "/api/v1/memory/1"),
        "memory_history": req("GET", "/api/v1/memory/1/history"),
        "memory_restore": req("POST", "/api/v1/memory/1/restore", {}),
        "delete": req("DELETE", "/api/v1/projects/nothere"),
        "metrics": req("GET", "/metrics", auth=False),
        "openapi": req("HEAD", "/openapi.json", auth=False),
        "page": req("GET", "/projects/demo", auth=False),
        "deep_json": req("POST", "/api/v1/projects", "[" * 40 + "]" * 40),
        "webhook_push": req("POST", "/api/v1/webhooks/github", {
            "ref": "refs/heads/main", "after": "1" * 40,
            "repository": {"full_name": "o/r", "clone_url": "file://{REPO}", "html_url": "x"}},
            headers=[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d-1"), ("X-Hub-Signature-256", "auto")]),
        "webhook_ping": req("POST", "/api/v1/webhooks/github", {"zen": "hi"},
                            headers=[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", "auto")]),
        "webhook_form": req("POST", "/api/v1/webhooks/github",
                            "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D",
                            headers=[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", "auto")]),
        "webhook_badsig": req("POST", "/api/v1/webhooks/github", {}, headers=[
            ("X-GitHub-Event", "push"), ("X-Hub-Signature-256", "sha256=" + "0" * 64)]),
    }
    for name, text in api.items():
        put("fuzz_http_api", name, text)


if __name__ == "__main__":
    sys.exit(main())
