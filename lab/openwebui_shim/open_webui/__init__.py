"""LAB STAND-IN: the few names of Open WebUI's backend package that the deploy's account script uses
(operations/openwebui_account.py), on the lab double's real webui.db (lab/doubles/openwebui_double.py).
Only on the PYTHONPATH of the Open WebUI stand-in image (lab/images/standin/Dockerfile.roles)."""
