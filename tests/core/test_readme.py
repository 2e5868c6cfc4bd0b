import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_api_tour_runs() -> None:
    """The core API tour in the README is executable as written."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    tour = next(b for b in blocks if "SoftToHardQuantizer" in b)
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)  # noqa: S102
    assert len(namespace["data"]) > 0
