#!/usr/bin/env python3
"""Checks .gitlab-ci.yml and the README's GitLab examples without a GitLab (issue 15).

    check_gitlab_ci.py REPO_ROOT [--artifacts]

For .gitlab-ci.yml: it parses (PyYAML, the YAML GitLab reads); every job names a known stage, has
a script, and its `needs`/`extends` name jobs that exist; every repository file a script line names
(paths under .ci/ and tools/, *.sh/*.py files, Containerfiles) exists, and so does every file those
scripts name in turn (`tools/…`, `.ci/…`, `$here/…` beside the script); with --artifacts (.ci/run,
after building) every artifacts path exists too.
For README.md: each ```yaml block under "GitLab CI example" parses as a pipeline of its own, its
`extends` resolve inside the block (a pasted example must stand alone), and every job keeps a
`resource_group` (runs never overlap), a report artifact, its artifacts when it fails
(`when: always`: a failed sync is when the reports matter) and a JUnit report
(`artifacts:reports:junit`) that matches the file its script names with `--junit`.
Exits 1 listing every problem.
"""
import fnmatch
import pathlib
import re
import shlex
import sys

import yaml

GLOBAL_KEYWORDS = {
    "default", "include", "stages", "variables", "workflow", "image", "services", "cache",
    "before_script", "after_script",
}
DEFAULT_STAGES = [".pre", "build", "test", "deploy", ".post"]
# Repository paths a script line can name: files under .ci/ or tools/, or any *.sh/*.py, or a
# Containerfile/Dockerfile. Variables ($X) and build outputs (target/) are not repository files.
PATH_RE = re.compile(
    r"(?<![\w$/.-])((?:\.ci|tools)/[\w./-]+|[\w./-]+\.(?:sh|py)|[\w./-]*(?:Containerfile|Dockerfile))\b"
)


FOLLOW_RE = re.compile(r"(?<![\w$/.-])((?:\.ci|tools)/[\w./-]*\w)")
HERE_RE = re.compile(r"\$here/([\w./-]*\w)")


def named_by(root, path, seen):
    """Repository files a script names, transitively: (file, named-by) pairs."""
    if path in seen or not (root / path).is_file():
        return
    seen.add(path)
    text = (root / path).read_text(errors="replace")
    found = FOLLOW_RE.findall(text)
    found += [str((pathlib.Path(path).parent / p)) for p in HERE_RE.findall(text)]
    for p in found:
        yield p, path
        if p.endswith((".sh", ".py")) or "/" in p and "." not in pathlib.Path(p).name:
            yield from named_by(root, p, seen)


def jobs_of(doc):
    return {k: v for k, v in doc.items() if k not in GLOBAL_KEYWORDS and isinstance(v, dict)}


def lines_of(job):
    for key in ("before_script", "script", "after_script"):
        value = job.get(key) or []
        for line in [value] if isinstance(value, str) else value:
            yield str(line)


def resolved(jobs, name, seen=()):
    """The job with its `extends` chain merged (shallowly, as far as these checks need)."""
    job = jobs[name]
    parents = job.get("extends") or []
    merged = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        if parent in jobs and parent not in seen:
            merged.update(resolved(jobs, parent, seen + (name,)))
    merged.update({k: v for k, v in job.items() if k != "extends"})
    return merged


def junit_problems(full, name, where):
    """A sync job's JUnit report: kept on failure, and the file its `--junit` writes."""
    artifacts = full.get("artifacts") or {}
    if artifacts.get("when") != "always":
        yield f"{where}: job {name} keeps its artifacts only when it succeeds (artifacts:when: always)"
    junit = (artifacts.get("reports") or {}).get("junit")
    if not junit:
        yield f"{where}: job {name} has no JUnit report (artifacts:reports:junit)"
        return
    patterns = [junit] if isinstance(junit, str) else list(junit)
    written = []
    for line in lines_of(full):
        words = shlex.split(line)
        for flag, value in zip(words, words[1:]):
            if flag == "--junit":
                # A CI variable ($TENANT, ${TENANT}) can be anything: a wildcard.
                written.append(re.sub(r"\$\{?\w+\}?", "*", value))
    if not written:
        yield f"{where}: job {name} reports {junit} but its script passes no --junit FILE"
    for path in written:
        if not any(fnmatch.fnmatch(path, p) for p in patterns):
            yield f"{where}: job {name} writes --junit {path}, which its reports:junit {patterns} does not match"


def check_structure(doc, where, problems):
    if not isinstance(doc, dict):
        problems.append(f"{where}: not a mapping of jobs")
        return {}
    jobs = jobs_of(doc)
    stages = doc.get("stages") or DEFAULT_STAGES
    for name, job in jobs.items():
        parents = job.get("extends") or []
        for parent in [parents] if isinstance(parents, str) else parents:
            if parent not in jobs:
                problems.append(f"{where}: job {name} extends {parent}, which is not defined")
        if name.startswith("."):
            continue  # a hidden job (template): checked through the jobs that extend it
        full = resolved(jobs, name)
        if "script" not in full and "trigger" not in full:
            problems.append(f"{where}: job {name} has no script")
        if full.get("stage", "test") not in stages:
            problems.append(f"{where}: job {name} names stage {full.get('stage')}, not in {stages}")
        for need in full.get("needs") or []:
            need = need.get("job") if isinstance(need, dict) else need
            if need not in jobs:
                problems.append(f"{where}: job {name} needs {need}, which is not defined")
    return jobs


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    with_artifacts = "--artifacts" in sys.argv[2:]
    problems = []

    pipeline = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    jobs = check_structure(pipeline, ".gitlab-ci.yml", problems)
    named = set()
    for name, job in jobs.items():
        for line in lines_of(job):
            for path in PATH_RE.findall(line):
                named.add(path)
                if not (root / path).is_file():
                    problems.append(f".gitlab-ci.yml: job {name} runs {path}, which is not in the repository")
                for sub, by in named_by(root, path, set()):
                    named.add(sub)
                    if not (root / sub).exists():
                        problems.append(f".gitlab-ci.yml: job {name} runs {by}, which names {sub}: not in the repository")
        for path in (job.get("artifacts") or {}).get("paths") or []:
            if with_artifacts and not (root / path).exists():
                problems.append(f".gitlab-ci.yml: job {name} keeps {path} as an artifact; the build made none")
    print(f".gitlab-ci.yml: {len(jobs)} jobs; repository files named: {', '.join(sorted(named))}")

    readme = (root / "README.md").read_text()
    section = readme.split("## GitLab CI example", 1)
    if len(section) != 2:
        problems.append("README.md: no '## GitLab CI example' section")
    else:
        body = section[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```yaml\n(.*?)```", body, re.S)
        if not blocks:
            problems.append("README.md: the GitLab CI example has no yaml block")
        for i, block in enumerate(blocks, 1):
            where = f"README.md GitLab example {i}"
            try:
                doc = yaml.safe_load(block)
            except yaml.YAMLError as e:
                problems.append(f"{where}: does not parse: {e}")
                continue
            example_jobs = check_structure(doc, where, problems)
            for name in example_jobs:
                if name.startswith("."):
                    continue
                full = resolved(example_jobs, name)
                if "resource_group" not in full:
                    problems.append(f"{where}: job {name} has no resource_group")
                if not (full.get("artifacts") or {}).get("paths"):
                    problems.append(f"{where}: job {name} keeps no report artifact")
                if not str(full.get("image", "")).strip():
                    problems.append(f"{where}: job {name} names no image")
                problems.extend(junit_problems(full, name, where))
        print(f"README.md: {len(blocks)} GitLab example(s) parsed")

    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
