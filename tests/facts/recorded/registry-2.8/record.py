"""Re-capture the image facts' outputs and their fixture cases (run from the repository root, with a
Docker engine and a registry on 127.0.0.1:5000 holding library/debian:bookworm, 5999 closed)."""

import json
import subprocess
from pathlib import Path

from facts.images import LocalImages, RegistryDigests

HERE = Path(__file__).resolve().parent
FACTS = HERE.parent.parent
REFS = ["127.0.0.1:5000/library/debian:bookworm", "127.0.0.1:5000/library/debian:nope",
        "127.0.0.1:5999/library/debian:bookworm"]

for cls, stem, refs in ((RegistryDigests, "registry-digests", REFS),
                        (LocalImages, "local-images", [*REFS, "debian:bookworm"])):
    command = cls().command(refs)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    (HERE / f"{stem}.txt").write_text(f"# command: {command}\n# exit: {done.returncode}\n" + done.stdout)
    lines = done.stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    case = {"_source": f"tests/facts/recorded/registry-2.8/{stem}.txt", "arg": {"refs": refs},
            "command": command, "output": lines, "fact": cls().process(lines)}
    folder = FACTS / f"images.{cls.__name__}"
    (folder / "recorded-registry.json").write_text(json.dumps(case, indent=2) + "\n")
    none = {"arg": {"refs": ["ollama/ollama:0.12.6"]}, "command": cls().command(["ollama/ollama:0.12.6"]),
            "output": [], "fact": {}}
    (folder / "no-docker.json").write_text(json.dumps(none, indent=2) + "\n")
