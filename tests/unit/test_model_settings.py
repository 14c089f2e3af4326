"""The model settings: HOMELAB_OLLAMA_MODELS (Ollama's name grammar, normalised as Ollama lists names),
HOMELAB_OLLAMA_PRUNE, HOMELAB_OLLAMA_INSECURE_REGISTRIES and HOMELAB_COMFYUI_MODELS; every bad value is
one line naming the setting, the value and what is expected, before any host is touched."""

from __future__ import annotations

import pytest

# the good environment, its clean_env fixture (autouse) and the load helpers are test_settings.py's
import test_settings
from test_settings import load, only_problem

from deploys.library.settings import ComfyModel

clean_env = test_settings.clean_env  # the fixture (autouse), shared

SUM = "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"
URL = "https://huggingface.co/stabilityai/sdxl/resolve/main/sd_xl_base_1.0.safetensors"


def test_defaults_pull_nothing_and_prune_nothing():
    settings = load()
    assert settings.ollama_models == [] and settings.ollama_prune is False
    assert settings.ollama_insecure_registries == [] and settings.comfyui_models == []


def test_model_names_are_normalised_as_ollama_lists_them_and_duplicates_dropped(clean_env):
    clean_env.setenv("HOMELAB_OLLAMA_MODELS", "llama3.2, qwen2.5-coder:7b,LLaMA3.2:latest,"
                     "registry.ollama.ai/library/mistral,user/model:q4,registry.lan:5000/team/tiny:1")
    assert load().ollama_models == [
        "llama3.2:latest", "qwen2.5-coder:7b", "mistral:latest", "user/model:q4",
        "registry.lan:5000/team/tiny:1",
    ]


def test_models_from_host_data_as_a_list():
    assert load(ollama_models=["llama3.2", "phi3:mini"]).ollama_models == ["llama3.2:latest", "phi3:mini"]


@pytest.mark.parametrize(("value", "expected"), [
    ("registry.lan:5000/tiny", "'registry.lan:5000' reads as a registry host, which needs a namespace too "
                               "(write registry.lan:5000/library/tiny:latest)"),
    ("a/b/c/d", "has 4 parts; expected [host/][namespace/]model[:tag]"),
    ("llama 3", "the model 'llama 3' is not valid (it starts with a letter, a digit or _"),
    ("-llama", "the model '-llama' is not valid"),
    ("llama3:", "the tag '' is not valid"),
    ("llama3@sha256:abcd", "a digest (@sha256:…) is not supported"),
    ("https://registry.lan/library/tiny", "a model name has no scheme"),
])
def test_bad_model_names_name_the_setting_the_value_and_the_grammar(value, expected):
    problem = only_problem(ollama_models=value)
    assert problem.startswith("HOMELAB_OLLAMA_MODELS (from host data `ollama_models`): ")
    assert repr(value) in problem and expected in problem, problem


def test_prune_needs_the_list_of_models_to_keep():
    problem = only_problem(ollama_prune="true")
    assert problem.startswith("HOMELAB_OLLAMA_PRUNE: true without HOMELAB_OLLAMA_MODELS would delete every "
                              "model")
    assert load(ollama_prune="true", ollama_models="llama3.2").ollama_prune is True


def test_insecure_registries_apply_to_their_models_only():
    settings = load(ollama_models="llama3.2,registry.lan:5000/library/tiny:1",
                    ollama_insecure_registries="Registry.LAN:5000")
    assert settings.ollama_insecure_registries == ["registry.lan:5000"]
    assert settings.ollama_insecure("registry.lan:5000/library/tiny:1") is True
    assert settings.ollama_insecure("llama3.2:latest") is False


@pytest.mark.parametrize(("value", "expected"), [
    ("registry.ollama.ai", "registry.ollama.ai is Ollama's public registry: its models are never pulled "
                           "over plain HTTP"),
    ("http://registry.lan:5000", "expected a registry host as it starts a model name (host or host:port"),
    ("registry.lan:5000/library", "expected a registry host"),
])
def test_bad_insecure_registries(value, expected):
    problem = only_problem(ollama_models="llama3.2", ollama_insecure_registries=value)
    assert problem.startswith("HOMELAB_OLLAMA_INSECURE_REGISTRIES") and expected in problem, problem


def test_an_insecure_registry_no_model_comes_from_is_a_mistake():
    problem = only_problem(ollama_models="llama3.2", ollama_insecure_registries="registry.lan:5000")
    assert problem == ("HOMELAB_OLLAMA_INSECURE_REGISTRIES: registry.lan:5000: no model in "
                       "HOMELAB_OLLAMA_MODELS comes from it (a model of a private registry is written "
                       "host:port/namespace/model:tag)")


def test_comfyui_entries_by_comma_or_line_break_with_an_optional_file_name(clean_env):
    clean_env.setenv("HOMELAB_COMFYUI_MODELS",
                     f"checkpoints {URL} {SUM.upper()},\n"
                     f"  loras/styles https://example.com/get?id=7 {SUM} pixel-art.safetensors  \n\n")
    assert load().comfyui_models == [
        ComfyModel("checkpoints", URL, SUM, "sd_xl_base_1.0.safetensors"),
        ComfyModel("loras/styles", "https://example.com/get?id=7", SUM, "pixel-art.safetensors"),
    ]


def test_the_same_entry_twice_is_one_and_two_urls_for_one_file_are_refused():
    assert len(load(comfyui_models=f"vae {URL} {SUM},vae {URL} {SUM}").comfyui_models) == 1
    problem = only_problem(comfyui_models=f"vae {URL} {SUM},vae https://mirror.example/x {SUM} "
                                          "sd_xl_base_1.0.safetensors")
    assert "entry 2: vae/sd_xl_base_1.0.safetensors is already the target of " + URL in problem


@pytest.mark.parametrize(("entry", "expected"), [
    (f"../checkpoints {URL} {SUM}", "entry 1: folder '../checkpoints': expected a ComfyUI models sub-folder"),
    (f"/etc {URL} {SUM}", "entry 1: folder '/etc': expected a ComfyUI models sub-folder"),
    (f"loras/../../x {URL} {SUM}", "no leading /, no .."),
    (f"checkpoints ftp://host/x.ckpt {SUM}", "entry 1: URL 'ftp://host/x.ckpt': expected an http:// or https://"),
    (f"checkpoints https://user:pw@host/x.ckpt {SUM}", "without spaces or a user:password@ part"),
    (f"checkpoints {URL} 1234", f"entry 1: SHA256 '1234' for {URL}: expected the file's SHA-256 as 64 hex"),
    (f"checkpoints https://host/ {SUM}", "file name '' for https://host/: expected a plain file name"),
    (f"checkpoints {URL} {SUM} ../x.ckpt", "file name '../x.ckpt'"),
    (f"checkpoints {URL}", "has 2 word(s); expected FOLDER URL SHA256 [FILENAME]"),
    (f"checkpoints {URL} {SUM} a b", "has 5 word(s)"),
])
def test_bad_comfyui_entries_name_the_setting_the_entry_and_what_is_expected(entry, expected):
    problem = only_problem(comfyui_models=entry)
    assert problem.startswith("HOMELAB_COMFYUI_MODELS (from host data `comfyui_models`): ")
    assert expected in problem, problem


def test_settings_print_the_models(clean_env, capsys):
    from deploys.library import settings as module

    clean_env.setenv("HOMELAB_OLLAMA_MODELS", "llama3.2")
    clean_env.setenv("HOMELAB_COMFYUI_MODELS", f"checkpoints {URL} {SUM}")
    clean_env.setattr(module.HomelabSettings, "model_config", {**module.HomelabSettings.model_config,
                                                                 "env_file": None})
    assert module.main() == 0
    out = capsys.readouterr().out
    assert "HOMELAB_OLLAMA_MODELS='llama3.2:latest'" in out
    assert f"HOMELAB_COMFYUI_MODELS='checkpoints {URL} {SUM} sd_xl_base_1.0.safetensors'" in out
