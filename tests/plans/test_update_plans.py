"""Image pins and updates planned against a `@fake` host running Ollama: a kept pin pulls and asks
nothing; a changed image setting, or a tag that moved in its registry (deploys/update.py), pulls first,
backs up first where backups are configured, and names old -> new with the rollback; `never` pulls
nothing. The host's answers are the facts' own formats (tests/facts/compose.ComposeFiles,
compose.ComposeProjects, tests/facts/recorded/registry-2.8)."""

from __future__ import annotations

import logging

import pytest
from harness import DEBIAN_12, plan

from deploys.library.context import DeployError

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
PULL = "Compose services | New images pulled first, all at once, before anything stops"
BACKUP = "Compose services | Backup before an update"


def ollama_host(pinned_image: str | None = "ollama/ollama:0.12.6", registry: dict[str, str] | None = None,
                held: tuple[str, ...] = (), held_digest: str | None = None) -> dict:
    """A host whose Ollama runs ``ollama/ollama@OLD``, pinned for ``pinned_image`` (None: no pin);
    it holds the images ``held``, pulled with ``held_digest`` (None: from no registry)."""
    pin = [] if pinned_image is None else [
        "pin x-homelab-pin:", f'pin   image: "{pinned_image}"', f'pin   pinned: "ollama/ollama@{OLD}"',
        "pin services:", "pin   ollama:", f'pin     image: "ollama/ollama@{OLD}"',
    ]
    container = ('{"name":"/ollama","labels":{"com.docker.compose.project":"ollama",'
                 '"com.docker.compose.service":"ollama","com.docker.compose.oneoff":"False"},'
                 f'"state":"running","health":"healthy","image":"ollama/ollama@{OLD}"}}')
    answers = {}
    for ref, digest in (registry or {}).items():
        answers[ref] = [f"### image {ref}", "HTTP/1.0 200 OK", "Api-Version: 1.41", "",
                        '{"Descriptor":{"mediaType":"application/vnd.oci.image.index.v1+json",'
                        f'"digest":"{digest}","size":1}},"Platforms":[]}}', ""]
    return {
        "ls -pdL *-release": DEBIAN_12,
        "uname -m": "x86_64",
        "SSH_CONNECTION": "192.0.2.9 40000 192.0.2.1 22",
        "cd /opt/homelab/ollama": pin,
        "docker ps --all --quiet --no-trunc --filter label=com.docker.compose.project": [container],
        "/distribution/": [line for lines in answers.values() for line in lines],
        "docker image inspect --format": [
            line for ref in held
            for line in (f"### image {ref}", '{"id":"sha256:' + "c" * 64 + '","repo_digests":'
                         + (f'["{ref.rpartition(":")[0]}@{held_digest}"]' if held_digest else "[]") + "}")
        ],
    }


def compose_op(ops: dict[str, list[str]]) -> tuple[str, list[str]]:
    (name,) = [name for name in ops if name.startswith("Compose services | ollama: ")
               and not name.endswith("running and healthy")]
    return name, ops[name]


def test_a_kept_pin_pulls_nothing_asks_no_registry_and_moves_nothing():
    ops = plan("deploys/ollama.py", ollama_host())
    assert ops[PULL] == []
    name, commands = compose_op(ops)
    assert name == "Compose services | ollama: compose project"
    assert not any("compose.override.yaml" in command for command in commands)


def test_a_new_image_setting_is_pulled_first_and_rolled_back_if_not_healthy():
    ops = plan("deploys/ollama.py", ollama_host(registry={"ollama/ollama:0.13.0": NEW}),
               {"image_ollama": "ollama/ollama:0.13.0"})
    (pull,) = ops[PULL]
    assert "docker pull --quiet" in pull and "ollama/ollama:0.13.0" in pull
    names = list(ops)
    name, commands = compose_op(ops)
    assert names.index(PULL) < names.index(name)  # nothing stops before every pull has ended
    assert name == (
        "Compose services | ollama: image ollama/ollama:0.12.6 (sha256:aaaaaaaaaaaa) -> "
        "ollama/ollama:0.13.0 (sha256:bbbbbbbbbbbb) (rolled back if not healthy)"
    )
    (pinning,) = [command for command in commands if "compose.override.yaml" in command]
    assert "ref=ollama/ollama:0.13.0" in pinning and "not healthy" in pinning
    assert f"want=ollama/ollama@{NEW};" in pinning  # the digest the registry serves for the tag
    assert "compose.override.previous.yaml" in pinning
    assert BACKUP not in ops  # no backups configured


def test_an_image_already_on_the_host_is_not_pulled_again():
    ops = plan("deploys/ollama.py", ollama_host(held=("ollama/ollama:0.13.0",)),
               {"image_ollama": "ollama/ollama:0.13.0"})
    assert ops[PULL] == []
    assert any("compose.override.yaml" in command for command in compose_op(ops)[1])


def test_an_image_on_the_host_that_its_registry_has_moved_on_from_is_pulled_again():
    # the host pulled 0.13.0 by hand when it named OLD; the registry serves NEW for it now
    ops = plan("deploys/ollama.py", ollama_host(registry={"ollama/ollama:0.13.0": NEW},
                                                held=("ollama/ollama:0.13.0",), held_digest=OLD),
               {"image_ollama": "ollama/ollama:0.13.0"})
    (pull,) = ops[PULL]
    assert "ollama/ollama:0.13.0" in pull


def test_an_image_on_the_host_with_the_digest_its_registry_serves_is_not_pulled_again():
    ops = plan("deploys/ollama.py", ollama_host(registry={"ollama/ollama:0.13.0": NEW},
                                                held=("ollama/ollama:0.13.0",), held_digest=NEW),
               {"image_ollama": "ollama/ollama:0.13.0"})
    assert ops[PULL] == []


def test_with_backups_a_backup_is_taken_before_the_update():
    data = {"image_ollama": "ollama/ollama:0.13.0", "backup_repository": "/mnt/backup/restic",
            "backup_password": "a-real-backup-password"}
    ops = plan("deploys/ollama.py", ollama_host(), data)
    names = list(ops)
    backup = [name for name in names if name.startswith(BACKUP)]
    assert backup == [f"{BACKUP} | Backup before the update of ollama: homelab-backup.service"]
    assert "systemctl start homelab-backup.service" in ops[backup[0]][0]
    assert names.index(PULL) < names.index(backup[0]) < names.index(compose_op(ops)[0])


def test_a_first_pin_of_a_running_project_is_made_without_a_pull_of_what_it_runs():
    # an install from before pins: the tag is on the host; pinning it recreates nothing new
    ops = plan("deploys/ollama.py", ollama_host(pinned_image=None, held=("ollama/ollama:0.12.6",)))
    assert ops[PULL] == []
    name, commands = compose_op(ops)
    assert name.startswith("Compose services | ollama: image ollama/ollama@sha256:aaaa")
    assert any("compose.override.yaml" in command for command in commands)


def test_update_asks_the_registry_and_moves_a_pin_whose_tag_moved():
    ops = plan("deploys/update.py", ollama_host(registry={"ollama/ollama:0.12.6": NEW}),
               {"services": "ollama"})
    (pull,) = ops[PULL]  # pulled again although the tag is on the host: it moved
    assert "ollama/ollama:0.12.6" in pull
    name, commands = compose_op(ops)
    assert name == (
        "Compose services | ollama: image ollama/ollama:0.12.6 (sha256:aaaaaaaaaaaa) -> "
        "ollama/ollama:0.12.6 (sha256:bbbbbbbbbbbb) (rolled back if not healthy)"
    )
    (pinning,) = [command for command in commands if "compose.override.yaml" in command]
    assert f"want=ollama/ollama@{NEW};" in pinning  # the moved tag's digest, not the one the host ran


def test_update_of_a_tag_that_did_not_move_changes_nothing():
    ops = plan("deploys/update.py", ollama_host(registry={"ollama/ollama:0.12.6": OLD}),
               {"services": "ollama"})
    name, commands = compose_op(ops)
    assert name == "Compose services | ollama: compose project"
    assert not any("compose.override.yaml" in command for command in commands)


def test_update_says_which_registry_it_could_not_ask(caplog):
    host = ollama_host()
    host["/distribution/"] = ["### image ollama/ollama:0.12.6", "HTTP/1.0 500 Internal Server Error", "",
                              '{"message":"Get \\"https://registry-1.docker.io/v2/\\": dial tcp: lookup '
                              'registry-1.docker.io: no such host"}', ""]
    with caplog.at_level(logging.WARNING):
        ops = plan("deploys/update.py", host, {"services": "ollama"})
    assert compose_op(ops)[0] == "Compose services | ollama: compose project"  # nothing moves
    said = [record.getMessage() for record in caplog.records if "not updated" in record.getMessage()]
    assert said == ["@fake/server: ollama: not updated: its registry could not be asked about "
                    'ollama/ollama:0.12.6 (Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
                    "registry-1.docker.io: no such host)"], caplog.text


def test_update_of_an_unknown_service_is_refused_before_anything():
    with pytest.raises(DeployError, match="update_services=olama: olama is not a service"):
        plan("deploys/update.py", ollama_host(), {"services": "ollama", "update_services": "olama"})


def test_pull_policy_never_pulls_nothing():
    ops = plan("deploys/ollama.py", ollama_host(),
               {"image_ollama": "ollama/ollama:0.13.0", "pull_policy": "never"})
    assert ops[f"{PULL} (HOMELAB_PULL_POLICY=never: none)"] == []


def test_outdated_lists_running_against_registry_digests_and_changes_nothing():
    from deploys.library.service_steps import outdated_report
    from tests.planning import settings

    pins = {"ollama": {"image": "ollama/ollama:0.12.6", "pinned": f"ollama/ollama@{OLD}"},
            "pihole": {"image": "pihole/pihole:2025.08.0", "pinned": f"pihole/pihole@{OLD}"},
            "comfyui": {"image": "yanwk/comfyui-boot:cu128-slim", "pinned": f"yanwk/comfyui-boot@{OLD}"},
            "open-webui": None}
    registry = {"ollama/ollama:0.12.6": {"digest": NEW}, "pihole/pihole:2025.08.0": {"digest": OLD},
                "yanwk/comfyui-boot:cu128-slim": {"error": "manifest unknown: manifest unknown"}}
    text, behind = outdated_report("@fake/server", settings(image_pihole="pihole/pihole:2025.09.0"),
                                   ["pihole", "ollama", "comfyui", "open-webui"], pins, registry)
    lines = text.splitlines()
    assert behind == 1
    assert lines[0] == "Images on @fake/server"
    by_service = {line.split()[0]: line for line in lines[2:-1]}
    moved = "sha256:aaaaaaaaaaaa  sha256:bbbbbbbbbbbb  the tag has moved: deploys/update.py"
    assert moved in by_service["ollama"]
    assert by_service["pihole"].endswith("current; the setting asks for pihole/pihole:2025.09.0: the next "
                                         "deploy updates it")
    assert by_service["comfyui"].endswith("registry not readable: manifest unknown: manifest unknown")
    assert "not deployed" in by_service["open-webui"]
    assert lines[-1] == "  1 of 4 behind their registry"


def test_outdated_plans_no_operation():
    ops = plan("deploys/outdated.py", ollama_host(registry={"ollama/ollama:0.12.6": NEW}),
               {"services": "ollama"})
    assert ops == {}
