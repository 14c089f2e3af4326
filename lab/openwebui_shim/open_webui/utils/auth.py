"""LAB STAND-IN for open_webui.utils.auth: bcrypt hashes as Open WebUI makes them."""

from lab.doubles.openwebui_double import password_hash, verify_password


def get_password_hash(password: str) -> str:
    return password_hash(password)


__all__ = ["get_password_hash", "verify_password"]
