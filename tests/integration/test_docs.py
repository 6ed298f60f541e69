"""The API pages (docs/api/) against the live route tables (issue 12).

Each service's internal `GET /api/<svc>/_routes` lists every route it serves,
built-ins and (on the test stack, PL_TEST_ROUTES=1) test routes included.
Every one must have a heading "### `METHOD pattern`" exactly as in the route
table: a service's own routes in docs/api/<svc>.md, the built-in routes every
service has once in docs/api/README.md with `<svc>` for the service's name.
A heading that names no live route fails too (a route was removed or
renamed), and so does a section whose "Auth:" line or "Body: JSON" mark
disagrees with the route's flags. Headings under a "Test-only routes" section
are only required to be live when the service serves test routes. Relative
links of README.md and docs/ must point at files and headings that exist."""
import re

import pytest

from conftest import service_routes, ROOT, SERVICES

API_DOCS = ROOT / "docs" / "api"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
ROUTE_HEADING = re.compile(r"^`([A-Z]+) (/[^`\s]*)`$")
PLACEHOLDER = "<svc>"


class Section:
    def __init__(self, page, method, pattern, test_only):
        self.page, self.method, self.pattern, self.test_only = page, method, pattern, test_only
        self.lines = []

    @property
    def where(self):
        return f"docs/api/{self.page.name}: `{self.method} {self.pattern}`"

    def auth_line(self):
        for line in self.lines:
            if line.startswith("Auth:"):
                return line
        return None

    def text(self):
        return "\n".join(self.lines)


def route_sections(page):
    """The route headings of a page, each with the text under it."""
    sections, current, test_only = [], None, False
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else HEADING.match(line)
        if m is None:
            if current is not None:
                current.lines.append(line)
            continue
        level, title = len(m.group(1)), m.group(2)
        current = None
        if level <= 2:
            test_only = title.lower().startswith("test-only routes")
        r = ROUTE_HEADING.match(title)
        if r:
            current = Section(page, r.group(1), r.group(2), test_only)
            sections.append(current)
    return sections


@pytest.fixture(scope="module")
def live(internal):
    """{svc: (test_routes, {(method, pattern): flags})} from each service."""
    return {svc: (body["test_routes"], {(x["method"], x["pattern"]): set(x["flags"]) for x in body["routes"]})
            for svc, body in service_routes(internal).items()}


@pytest.fixture(scope="module")
def docs():
    pages = {p.stem: route_sections(p) for p in sorted(API_DOCS.glob("*.md"))}
    assert "README" in pages, "docs/api/README.md is missing"
    return pages


def generic(svc, pattern):
    prefix = f"/api/{svc}/"
    return f"/api/{PLACEHOLDER}/{pattern[len(prefix):]}" if pattern.startswith(prefix) else None


def check_section(section, flags):
    """Problems with what a section says about its route's flags."""
    problems = []
    auth = section.auth_line()
    if auth is None:
        return [f"{section.where}: no 'Auth:' line"]
    low = auth.lower()
    if "admin" in flags:
        want = "admin"
    elif "auth" in flags:
        want = "token"
    elif flags & {"internal", "test"}:
        want = "internal"
    elif "token_query" in flags:
        want = "token"
    else:
        want = "none"
    if want not in low:
        problems.append(f"{section.where}: flags {sorted(flags)} but {auth!r} does not say {want!r}")
    if "token_query" in flags and "access_token" not in section.text():
        problems.append(f"{section.where}: flag token_query but ?access_token= is not mentioned")
    says_json = "Body: JSON" in section.text()
    if ("json" in flags) != says_json:
        problems.append(f"{section.where}: flags {sorted(flags)} but 'Body: JSON' is {'' if says_json else 'not '}there")
    return problems


GUIDES = {"clients"}  # pages about using the API as a whole: no route of their own


def test_every_page_is_a_service_or_the_basics(docs):
    pages = {"README", *GUIDES, *SERVICES}
    assert set(docs) <= pages, f"unexpected API pages: {sorted(set(docs) - pages)}"
    for guide in GUIDES & set(docs):
        assert not docs[guide], f"docs/api/{guide}.md is a guide, but has route headings: {docs[guide]}"


def test_no_route_is_documented_twice(docs):
    seen, twice = set(), []
    for page, sections in docs.items():
        for s in sections:
            key = (page if page == "README" else "svc", s.method, s.pattern)
            if key in seen:
                twice.append(s.where)
            seen.add(key)
    assert not twice, f"documented twice: {twice}"


@pytest.mark.parametrize("svc", SERVICES)
def test_every_live_route_is_documented(svc, live, docs):
    _, routes = live[svc]
    own = {(s.method, s.pattern): s for s in docs.get(svc, [])}
    builtin = {(s.method, s.pattern): s for s in docs["README"]}
    missing, problems = [], []
    for (method, pattern), flags in routes.items():
        section = own.get((method, pattern)) or builtin.get((method, generic(svc, pattern)))
        if section is None:
            missing.append(f"{method} {pattern} {sorted(flags)}")
            continue
        if "test" in flags and not section.test_only:
            problems.append(f"{section.where}: a test route outside 'Test-only routes'")
        problems += check_section(section, flags)
    assert not missing, (f"live routes of {svc} with no heading in docs/api/{svc}.md "
                         f"(or docs/api/README.md for built-ins): {missing}")
    assert not problems, problems


@pytest.mark.parametrize("svc", SERVICES)
def test_every_documented_route_is_live(svc, live, docs):
    test_routes, routes = live[svc]
    gone = []
    for s in docs.get(svc, []):
        if not s.pattern.startswith(f"/api/{svc}"):
            gone.append(f"{s.where}: not under /api/{svc}")
        elif (s.method, s.pattern) not in routes and not (s.test_only and not test_routes):
            gone.append(s.where)
    assert not gone, f"documented but not served by {svc}: {gone}"


def test_builtin_routes_are_live_in_every_service(live, docs):
    gone = []
    for s in docs["README"]:
        if not s.pattern.startswith(f"/api/{PLACEHOLDER}/"):
            gone.append(f"{s.where}: a built-in route is written with {PLACEHOLDER}")
            continue
        for svc in SERVICES:
            test_routes, routes = live[svc]
            concrete = s.pattern.replace(PLACEHOLDER, svc, 1)
            if (s.method, concrete) not in routes and not (s.test_only and not test_routes):
                gone.append(f"{s.where}: {svc} does not serve {s.method} {concrete}")
    assert not gone, gone


def anchors(page):
    """The anchors GitHub makes for a page's headings."""
    found, seen, in_code = set(), {}, False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else HEADING.match(line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(2).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_doc_links_resolve():
    """Relative links of README.md and docs/ point at files (and headings) that exist."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_the_configuration_page_refuses_a_service_list_the_runner_refuses(tmp_path):
    """docs/configuration.sh reads services/list with the runner's own rule:
    a comment line there is refused by both, not skipped by one."""
    import shutil
    import subprocess
    for part in ("docs/configuration.sh", "scripts/lib.sh", "nginx/defaults.env"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / part, tmp_path / part)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "list").write_text("accounts\n# a comment\nprojects\n")
    build = tmp_path / "build"
    build.mkdir()
    p = subprocess.run(["bash", str(tmp_path / "docs" / "configuration.sh"), "--check", str(build)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "'# a comment' is not a service name" in p.stderr, p.stdout + p.stderr
