"""Finding and parsing skills (core/skills.py): the files other agents' users bring, the AgentSkills
format with YAML front matter, triggers as whole words, nested rules, and every way a file can be
unusable (reported and skipped, never fatal)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.skills import MAX_SKILL_BYTES, InstructionFile, Skill, SkillFinder, SkillProblem, trigger_pattern


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


def test_always_on_files_from_every_agent(ws: Path) -> None:
    write(ws, "AGENTS.md", "Use pytest -q.\n")
    write(ws, "CLAUDE.md", "Prefer small functions.\n")
    write(ws, ".cursorrules", "No print debugging.\n")
    write(ws, ".github/copilot-instructions.md", "Type hints everywhere.\n")
    write(ws, ".openhands/microagents/repo.md", "---\nname: repo\n---\nThe app lives in src/.\n")
    catalog = SkillFinder(ws).scan()
    assert [(f.path, f.text) for f in catalog.instructions] == [
        ("AGENTS.md", "Use pytest -q."),
        ("CLAUDE.md", "Prefer small functions."),
        (".cursorrules", "No print debugging."),
        (".github/copilot-instructions.md", "Type hints everywhere."),
        (".openhands/microagents/repo.md", "The app lives in src/."),  # its front matter is metadata
    ]
    assert catalog.skills == {} and catalog.problems == ()


def test_agent_skills_with_yaml_lists_and_plain_and_legacy_files(ws: Path, tmp_path: Path) -> None:
    write(
        ws,
        ".agents/skills/pdf-forms/SKILL.md",
        "---\nname: pdf-forms\ndescription: >\n  Fill PDF forms\n  with pypdf.\ntriggers:\n  - pdf\n  - form filling\n---\n# PDF\nUse pypdf.\n",
    )
    write(ws, ".agents/skills/style.md", "---\ntriggers: [style, lint]\n---\n# Code style\nRun ruff.\n")
    write(ws, ".agents/skills/notes.md", "# Release notes\nKeep a changelog.\n")
    write(
        ws,
        ".openhands/microagents/docker.md",
        "---\nname: docker\ntype: knowledge\ntriggers:\n- docker\n---\nUse compose.\n",
    )
    write(ws, ".openhands/microagents/knowledge/k8s.md", "---\ntriggers: [kubectl]\n---\nUse kind.\n")
    write(ws, ".openhands/microagents/always.md", "---\ntype: repo\n---\nAlways on.\n")
    user = tmp_path / "user-skills"
    write(user, "review/SKILL.md", "---\nname: review\ndescription: Review a diff\n---\nLook for bugs.\n")
    write(user, "style.md", "---\ndescription: the user's style\n---\nTabs.\n")  # the workspace's wins
    catalog = SkillFinder(ws, user).scan()
    skills = catalog.skills
    assert skills["pdf-forms"] == Skill(
        name="pdf-forms",
        description="Fill PDF forms with pypdf.",
        path=".agents/skills/pdf-forms/SKILL.md",
        body="# PDF\nUse pypdf.",
        triggers=("pdf", "form filling"),
    )
    assert skills["style"].triggers == ("style", "lint") and skills["style"].description == "Code style"
    assert skills["notes"].triggers == () and skills["notes"].description == "Release notes"
    assert skills["docker"].triggers == ("docker",)
    assert skills["k8s"].path == ".openhands/microagents/knowledge/k8s.md"
    assert skills["review"].path.endswith("user-skills/review/SKILL.md")
    assert InstructionFile(".openhands/microagents/always.md", "Always on.") in catalog.instructions
    [duplicate] = catalog.problems
    assert (
        duplicate.path.endswith("user-skills/style.md")
        and "another skill is named 'style'" in duplicate.message
    )


def test_triggers_match_whole_words_case_insensitively() -> None:
    skill = Skill("react", "React", "x", "body", triggers=("react", "unit test", "c++"))
    assert skill.trigger_in("Fix the React component") == "react"
    assert skill.trigger_in("the reactor is down; a preact app; reacts") is None
    assert skill.trigger_in("add a Unit   Test for it") == "unit test"
    assert skill.trigger_in("port it to C++ please") == "c++"
    assert skill.trigger_in("c++x") is None
    assert trigger_pattern("a.b").search("aXb") is None  # a trigger is text, never a regex


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("---\nname: [unclosed\n---\nbody\n", "not valid YAML"),
        ("---\n- a\n- b\n---\nbody\n", "not a mapping"),
        ("---\nname: x\nbody without an end\n", "never closed"),
        ("---\ntriggers: {a: 1}\n---\nbody\n", "`triggers` must be a list"),
        ("---\ndescription: [1, 2]\n---\nbody\n", "`description` must be a string"),
        (b"---\nname: x\n---\n\xff\xfe bad bytes\n", "not UTF-8"),
        ("x" * (MAX_SKILL_BYTES + 1), f"larger than {MAX_SKILL_BYTES} bytes"),
    ],
)
def test_a_malformed_skill_is_reported_and_skipped(ws: Path, content: str | bytes, why: str) -> None:
    write(ws, ".agents/skills/bad/SKILL.md", content)
    write(ws, ".agents/skills/good/SKILL.md", "---\ndescription: fine\n---\nok\n")
    catalog = SkillFinder(ws).scan()
    assert list(catalog.skills) == ["good"]
    [problem] = catalog.problems
    assert problem.path == ".agents/skills/bad/SKILL.md" and why in problem.message
    assert str(problem).endswith("it is skipped")


def test_symlinks_never_lead_out_of_the_workspace(ws: Path, tmp_path: Path) -> None:
    secret = write(tmp_path, "outside/secret.md", "---\ndescription: stolen\n---\nSECRET\n")
    write(tmp_path, "outside/skills/x/SKILL.md", "---\ndescription: stolen\n---\nSECRET\n")
    (ws / "AGENTS.md").symlink_to(secret)
    write(ws, ".agents/skills/real/SKILL.md", "---\ndescription: real\n---\nok\n")
    (ws / ".agents" / "skills" / "link").mkdir()
    (ws / ".agents" / "skills" / "link" / "SKILL.md").symlink_to(secret)
    (ws / ".agents" / "skills" / "linked-dir").symlink_to(tmp_path / "outside" / "skills" / "x")
    (ws / ".openhands").symlink_to(tmp_path / "outside")
    catalog = SkillFinder(ws).scan()
    assert list(catalog.skills) == ["real"] and catalog.instructions == ()
    assert all("SECRET" not in s.body for s in catalog.skills.values())
    reasons = {p.path: p.message for p in catalog.problems}
    assert set(reasons) == {
        "AGENTS.md",
        ".agents/skills/link/SKILL.md",
        ".agents/skills/linked-dir",
        ".openhands",
    }
    assert all("symlink" in why for why in reasons.values())


def test_symlinks_inside_the_workspace_are_followed(ws: Path) -> None:
    write(ws, "AGENTS.md", "Shared rules.\n")
    (ws / "CLAUDE.md").symlink_to("AGENTS.md")  # the usual way to share one file: given once
    write(ws, "docs/skills/deploy/SKILL.md", "---\ndescription: Deploy it\n---\nRun make deploy.\n")
    (ws / ".agents").mkdir()
    (ws / ".agents" / "skills").symlink_to(ws / "docs" / "skills")
    (ws / ".cursorrules").symlink_to(ws / "missing")  # dangling: nothing there
    catalog = SkillFinder(ws).scan()
    assert [f.path for f in catalog.instructions] == ["AGENTS.md"]
    assert catalog.skills["deploy"].path == ".agents/skills/deploy/SKILL.md"
    assert catalog.problems == ()


def test_skills_are_read_again_when_their_files_change(ws: Path) -> None:
    path = write(ws, ".agents/skills/a/SKILL.md", "---\ndescription: first\n---\nbody\n")
    finder = SkillFinder(ws)
    first = finder.scan().skills["a"]
    assert finder.scan().skills["a"] is first  # unchanged: not parsed again
    path.write_text("---\ndescription: second version\n---\nnew body\n")
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    again = finder.scan().skills["a"]
    assert again.description == "second version" and again.body == "new body"
    path.unlink()
    assert finder.scan().skills == {}


def test_nested_agents_md_are_rules_for_their_folders(ws: Path, tmp_path: Path) -> None:
    write(ws, "AGENTS.md", "root rules\n")
    write(ws, "api/AGENTS.md", "api rules\n")
    write(ws, "api/v2/AGENTS.md", "v2 rules\n")
    write(ws, "web/AGENTS.md", "")  # empty: nothing to give
    (ws / "web" / "deep").mkdir()
    (ws / "web" / "deep" / "AGENTS.md").symlink_to(write(tmp_path, "evil.md", "evil"))
    finder = SkillFinder(ws)
    found = list(finder.rules_for("api/v2/handlers/user.py"))
    assert found == [
        InstructionFile("api/AGENTS.md", "api rules"),
        InstructionFile("api/v2/AGENTS.md", "v2 rules"),
    ]
    assert list(finder.rules_for("README.md")) == []  # the root's is always on
    assert list(finder.rules_for("../etc/passwd")) == []
    assert list(finder.rules_for("api/../../etc/x")) == []
    assert list(finder.rules_for(".git/hooks/pre-commit")) == []
    [problem] = list(finder.rules_for("web/deep/x.py"))
    assert isinstance(problem, SkillProblem) and "symlink" in problem.message


def test_odd_names_and_folders(ws: Path) -> None:
    write(
        ws,
        ".agents/skills/we ird\x1bname/SKILL.md",
        "---\nname: 'a b/c\\n'\ndescription: \"odd\\x1b[31m\\u0007 one\"\n---\nok\n",
    )
    write(ws, ".agents/skills/README.md", "# About these skills\n")  # documentation, not a skill
    write(ws, ".agents/skills/.hidden/SKILL.md", "---\ndescription: hidden\n---\nno\n")
    write(ws, ".agents/skills/empty-name/SKILL.md", "---\nname: '///'\n---\nno name\n")
    catalog = SkillFinder(ws).scan()
    assert set(catalog.skills) == {"a-b-c-n"}
    odd = catalog.skills["a-b-c-n"]
    assert odd.path == ".agents/skills/we ird\\x1bname/SKILL.md"  # escaped: safe on a terminal
    assert odd.description == "odd[31m one"
    [problem] = catalog.problems
    assert "no usable `name`" in problem.message


def test_what_reaches_the_prompt_is_bounded(ws: Path) -> None:
    from core.events import SkillListing
    from core.prompts import skills_section
    from core.skill_guide import MAX_SKILL_TEXT, skill_text
    from core.skills import MAX_INSTRUCTIONS_CHARS

    write(ws, "AGENTS.md", "a" * 19_000)
    write(ws, "CLAUDE.md", "b" * 19_000)
    write(ws, ".cursorrules", "c" * 19_000)
    write(ws, ".github/copilot-instructions.md", "d" * 19_000)
    catalog = SkillFinder(ws).scan()
    assert [f.path for f in catalog.instructions] == ["AGENTS.md", "CLAUDE.md", ".cursorrules"]
    assert sum(len(f.text) for f in catalog.instructions) < MAX_INSTRUCTIONS_CHARS + 200
    assert catalog.instructions[-1].text.endswith("[… cut here: the file has 19000 characters]")
    big = Skill("big", "Big", "big.md", "z" * (MAX_SKILL_TEXT * 2))
    assert len(skill_text(big)) < MAX_SKILL_TEXT + 300 and "read big.md" in skill_text(big)
    many = [SkillListing(name=f"s{i}", description="d" * 1000, path="p") for i in range(150)]
    section = skills_section(many)
    assert section.count("\n- s") == 100 and "and 50 more" in section and "d" * 301 not in section
