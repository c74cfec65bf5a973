"""The built wheel installs into a fresh virtual environment, imports, runs the README example, and
carries its types (PEP 561): what `pip install dockfleet` gives a user, not the source tree."""

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT


def sh(*args: str, cwd: Path) -> str:
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout}{out.stderr}"
    return out.stdout


def test_wheel_installs_into_a_fresh_venv_and_runs_the_example(tmp_path: Path) -> None:
    # The build maturin develop made (the dev profile): packing it compiles nothing new.
    sh("maturin", "build", "--profile", "dev", "-q", "-o", str(tmp_path / "wheels"), cwd=ROOT / "bindings-python")
    (wheel,) = (tmp_path / "wheels").glob("dockfleet-*.whl")
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = str(venv / "bin" / "python")
    sh(python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel), cwd=tmp_path)

    # Imported from the venv's site-packages, not from the source tree.
    where = sh(python, "-c", "import dockfleet, dockfleet.sync; print(dockfleet.__file__)", cwd=tmp_path)
    assert where.startswith(str(venv)), where
    out = sh(python, str(ROOT / "examples" / "python" / "quickstart.py"), cwd=tmp_path)
    assert "exit 0: hello from dockfleet" in out, out

    # The stubs and py.typed ship: mypy, pointed at the fresh venv, checks a use and refuses a misuse.
    check = tmp_path / "check.py"

    def mypy(body: str) -> subprocess.CompletedProcess[str]:
        check.write_text(textwrap.dedent(body))
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable", python, str(check)],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )

    good = mypy("""
        import dockfleet
        from dockfleet import sync

        async def main() -> float:
            host = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="a", address="unix:///x"))
            return (await host.ping()).latency

        def blocking(host: sync.DockerHost) -> int:
            return len(host.list_containers())
    """)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = mypy("""
        import dockfleet

        spec = dockfleet.ContainerSpec(image=42)
    """)
    assert bad.returncode == 1 and 'incompatible type "int"' in bad.stdout, bad.stdout + bad.stderr
