"""Run INSIDE the Open WebUI container (``docker exec -i open-webui python3 -c …``), by
operations/openwebui.py: make the configured account Open WebUI's admin with Open WebUI's own code,
as its 0.7 release does for WEBUI_ADMIN_EMAIL at start (``utils/auth.create_admin_user``):

- no account with the email: ``Auths.insert_new_auth(email, get_password_hash(password), name,
  role="admin")``;
- an account with it: its password set (``Auths.update_user_password_by_id``) and its role made admin.

The email, password and name come as JSON on stdin (never on a command line). One line on stdout
says what was done; a failure is one line on stderr and exit status 1.
"""

import json
import sys


def main() -> int:
    wanted = json.load(sys.stdin)
    email, password, name = wanted["email"].lower(), wanted["password"], wanted["name"]
    try:
        from open_webui.models.auths import Auths
        from open_webui.models.users import Users
        from open_webui.utils.auth import get_password_hash
    except ImportError as error:
        print(f"homelab: this container has no Open WebUI to ask ({error})", file=sys.stderr)
        return 1
    user = Users.get_user_by_email(email)
    if user is None:
        if Auths.insert_new_auth(email, get_password_hash(password), name, "/user.png", "admin") is None:
            print(f"homelab: Open WebUI did not create the account {email}", file=sys.stderr)
            return 1
        print(f"homelab: Open WebUI admin {email} created")
        return 0
    if not Auths.update_user_password_by_id(user.id, get_password_hash(password)):
        print(f"homelab: Open WebUI did not take the new password of {email}", file=sys.stderr)
        return 1
    if user.role != "admin" and Users.update_user_role_by_id(user.id, "admin") is None:
        print(f"homelab: Open WebUI did not make {email} an admin", file=sys.stderr)
        return 1
    promoted = "" if user.role == "admin" else ", made admin"
    print(f"homelab: Open WebUI admin {email}: password set{promoted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
