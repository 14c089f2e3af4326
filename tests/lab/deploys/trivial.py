"""A trivial deploy for the lab harness tests: a directory and a file (no homelab code involved)."""

from pathlib import Path

from pyinfra.operations import files

HERE = Path(__file__).resolve().parent

files.directory(name="lab e2e: directory", path="/srv/lab-e2e", mode="755")
files.put(
    name="lab e2e: file",
    src=str(HERE / "files" / "hello.txt"),
    dest="/srv/lab-e2e/hello.txt",
    mode="644",
)
