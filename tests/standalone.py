"""A fresh Python that cannot import transgrad: where exported modules must run."""
import os
import subprocess
import sys


def run_without_transgrad(directory, code):
    """Run `code` with `directory` first on the path and transgrad unimportable; it must
    print `ok` and exit cleanly."""
    prelude = f"import sys; sys.modules['transgrad'] = None\nsys.path.insert(0, {str(directory)!r})\n"
    r = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=str(directory),
                       env={**os.environ, "PYTHONPATH": ""})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
