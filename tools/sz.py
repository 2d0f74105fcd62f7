"""Lines of code per file in transgrad/, and the budget check (CI runs it through
tests/test_budget.py). A low line count is a proxy for readability: spend lines on ideas.

    python tools/sz.py
"""
import pathlib
import sys
import tokenize

ROOT = pathlib.Path(__file__).resolve().parent.parent / "transgrad"
BUDGET = 6350  # lines of code of the core: no comments, docstrings or blank lines counted
LIBRARY = ("nn", "optim")  # PyTorch's library on top of the core, with a budget of its own
LIBRARY_BUDGET = 1000


def code_lines(path):
    """Lines holding tokens other than comments, strings on their own (docstrings) and newlines."""
    lines, last = set(), tokenize.NEWLINE
    with open(path, "rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER):
                continue
            if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                last = tokenize.NEWLINE if tok.type == tokenize.NEWLINE else last
                continue
            at_start = last == tokenize.NEWLINE
            last = tok.type
            if tok.type == tokenize.STRING and at_start:
                continue  # a docstring or a bare string statement
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines)


def main():
    """Print the sizes; return (core lines, library lines)."""
    sizes = sorted((code_lines(p), str(p.relative_to(ROOT.parent))) for p in ROOT.rglob("*.py"))
    for n, name in sizes:
        print(f"{n:6d}  {name}")
    library = sum(n for n, name in sizes if name.split("/")[1] in LIBRARY)
    core = sum(n for n, _ in sizes) - library
    print(f"{core:6d}  core (budget {BUDGET})")
    print(f"{library:6d}  nn and optim (budget {LIBRARY_BUDGET})")
    return core, library


if __name__ == "__main__":
    core, library = main()
    sys.exit(0 if core <= BUDGET and library <= LIBRARY_BUDGET else 1)
