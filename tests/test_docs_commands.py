"""Every command in README.md, docs/ and the config READMEs works as written.

Each fenced ``bash`` block is split into commands (``\\`` continues a
line, ``#`` starts a comment). Scripts of ``tools/`` must exist: Python
tools answer ``--help``, and every ``--option`` a command uses is one the
tool knows; shell scripts pass ``bash -n``; named configs exist; ``pip
install`` names only extras that setup.py declares; ``python -c``
snippets and here-documents run.
"""

import ast
import functools
import glob
import os.path as osp
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import REPO

DOCS = sorted(
    [osp.join(REPO, 'README.md')]
    + glob.glob(osp.join(REPO, 'docs', '*.md'))
    + glob.glob(osp.join(REPO, 'configs', '**', 'README.md'), recursive=True)
)
FENCE = re.compile(r'^```bash\n(.*?)^```', re.S | re.M)


def commands(path):
    """(line number, command, here-document or None) of every bash command
    in a markdown file."""
    text = open(path, encoding='utf-8').read()
    found = []
    for block in FENCE.finditer(text):
        first = text[: block.start()].count('\n') + 2
        lines = block.group(1).splitlines()
        joined, start, i = '', None, 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.strip() or (not joined and line.lstrip()[0] == '#'):
                continue
            start = first + i - 1 if not joined else start
            joined += line.rstrip('\\').rstrip() + ' '
            if line.rstrip().endswith('\\'):
                continue
            heredoc = None
            match = re.search(r"<<\s*'?(\w+)'?", joined)
            if match:
                end = lines.index(match.group(1), i)
                heredoc = '\n'.join(lines[i:end]) + '\n'
                i = end + 1
            found.append((start, joined.strip(), heredoc))
            joined = ''
    return found


def words(command):
    """The command's words up to a comment or a pipe, env settings left
    out; optional parts written as ``[--opt X]`` count as given."""
    tokens = shlex.split(command.replace('[', ' ').replace(']', ' '), True)
    out = []
    for token in tokens:
        if token in ('|', '&&', ';', '<<', '>'):
            break
        if not out and re.match(r'^[A-Z_]+=', token):
            continue
        out.append(token)
    return out


CASES = [
    pytest.param(
        path, line, cmd, heredoc, id=f'{osp.relpath(path, REPO)}:{line}'
    )
    for path in DOCS
    for line, cmd, heredoc in commands(path)
]


def runs_a_tool(argv):
    """Whether the command's words run a Python script of tools/."""
    return argv[:1] == ['python'] and argv[1].startswith('tools/')


def help_of(script):
    """``(returncode, stdout, stderr)`` of ``python script --help``."""
    out = subprocess.run(
        [sys.executable, script, '--help'],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out.returncode, out.stdout, out.stderr


@functools.lru_cache(maxsize=None)
def all_tool_helps():
    """``--help`` of every tool the docs run, two at a time: each is a
    Python start-up that imports torch and mmdet, one core's work."""
    scripts = {
        argv[1]
        for case in CASES
        for argv in [words(case.values[2])]
        if runs_a_tool(argv)
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(scripts, pool.map(help_of, scripts)))


def tool_help(script):
    code, stdout, stderr = all_tool_helps()[script]
    assert code == 0, f'{script} --help: {stderr[-2000:]}'
    return stdout


def extras():
    tree = ast.parse(open(osp.join(REPO, 'setup.py')).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'extras_require':
            return {k.value for k in node.value.keys}
    return set()


def test_docs_have_commands():
    assert len(CASES) >= 20
    assert any('tools/quickstart.sh' in c.values[2] for c in CASES)


@pytest.mark.slow
@pytest.mark.parametrize('path,line,command,heredoc', CASES)
def test_command_works_as_written(path, line, command, heredoc):
    argv = words(command)
    where = f'{osp.relpath(path, REPO)}:{line}: {command}'
    for arg in argv:
        if re.fullmatch(r'configs/[\w./-]+\.py', arg):
            assert osp.isfile(osp.join(REPO, arg)), f'{where}: no {arg}'
    if argv[:1] == ['python'] and argv[1] in ('-c', '-'):
        out = subprocess.run(
            [sys.executable, *argv[1:3]]
            if heredoc is None
            else [sys.executable, '-'],
            input=heredoc,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, f'{where}\n{out.stderr[-2000:]}'
    elif runs_a_tool(argv):
        assert osp.isfile(osp.join(REPO, argv[1])), where
        known = tool_help(argv[1])
        for option in argv[2:]:
            if option.startswith('--'):
                name = option.split('=')[0]
                assert re.search(rf'{re.escape(name)}\b', known), (
                    f'{where}: {argv[1]} has no {name}'
                )
    elif argv[:1] == ['bash'] and argv[1].startswith('tools/'):
        script = osp.join(REPO, argv[1])
        assert osp.isfile(script), where
        out = subprocess.run(['bash', '-n', script], capture_output=True)
        assert out.returncode == 0, where
    elif argv[:2] == ['pip', 'install']:
        for arg in shlex.split(command, True)[2:]:
            match = re.search(r'\[([\w,]+)\]', arg)
            if match:
                assert set(match.group(1).split(',')) <= extras(), where
    else:
        pytest.skip(f'not a command of this repository: {argv[:2]}')
