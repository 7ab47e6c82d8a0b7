"""Desks in the settings (issue 17): a drop without [[desks]] has one built-in desk made
of its keys, a [[desks]] table is validated with messages that name what is wrong,
operator text holds no markup or address, and report_categories is a checked subset."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from securedrop_wm import sources
from securedrop_wm.cli import main as cli
from securedrop_wm.codenames import generate_codename
from securedrop_wm.desks import (
    BUILTIN_ID,
    central_desk,
    desk_by_id,
    recipients,
    route,
    stored_ids,
)
from securedrop_wm.drop import open_drop
from securedrop_wm.errors import SettingsError, UnknownDeskError
from securedrop_wm.keys_admin import edit_config
from securedrop_wm.settings import Settings, load_settings
from securedrop_wm.vocabulary import Category
from tests.conftest import Responders

A_TEAM = "A" * 40
A_TWO = "B" * 40
A_STATION = "C" * 40
F_TEAM = "D" * 40
F_STATION = "E" * 40

TWO_DESKS = f'''
[[desks]]
id = "wmf"
central = true
team_fingerprint = "{A_TEAM}"
responder_fingerprints = ["{A_TWO}"]
workstation_fingerprint = "{A_STATION}"
languages = ["en", "fr"]
[desks.name]
en = "Trust and Safety"
fr = "Confiance et sécurité"
[desks.serves]
en = "Everyone, anywhere"

[[desks]]
id = "fa-community"
team_fingerprint = "{F_TEAM}"
workstation_fingerprint = "{F_STATION}"
languages = ["fa"]
[desks.name]
en = "Persian community desk"
fa = "میز جامعهٔ فارسی"
'''


def with_desks(data_dir: Path, desks: str, **top: str | list[str]) -> Path:
    """The data dir's config with its top-level keys emptied and ``desks`` appended."""
    config = data_dir / "config.toml"
    blank: dict[str, str | list[str]] = {
        "team_fingerprint": "",
        "responder_fingerprints": [],
        "workstation_fingerprint": "",
        **top,
    }
    config.write_text(edit_config(config.read_text(), blank) + desks)
    return config


def load(config: Path) -> Settings:
    return load_settings(config, environ={})


def test_a_drop_without_desks_has_one_builtin_desk_of_its_keys(settings: Settings) -> None:
    # Given the config every drop has today (no [[desks]]), loaded
    (desk,) = settings.desks
    # Then its one desk is the built-in, central one, with the drop's keys
    assert desk.id == BUILTIN_ID and desk.is_builtin and desk.central
    assert desk.team_fingerprint == settings.team_fingerprint
    assert desk.responder_fingerprints == settings.responder_fingerprints
    assert desk.workstation_fingerprint == settings.workstation_fingerprint
    assert desk.text("name", "fa") == "The response team" and desk.text("description", "en") == ""
    # And a report with no desk chosen goes to it, encrypted to every key as before
    assert route(settings, None, also_central=False) == (BUILTIN_ID,)
    assert recipients(settings, [BUILTIN_ID]) == settings.responder_fingerprints
    # And every category is offered, in the vocabulary's order
    assert settings.report_categories == tuple(c.value for c in Category)


def test_desks_are_read_with_their_keys_texts_and_fallbacks(data_dir: Path) -> None:
    settings = load(with_desks(data_dir, TWO_DESKS))
    wmf, fa = settings.desks
    assert (wmf.id, fa.id) == ("wmf", "fa-community")
    assert wmf.responder_fingerprints == (A_TEAM, A_TWO) and fa.responder_fingerprints == (F_TEAM,)
    assert central_desk(settings) == wmf and not fa.is_builtin
    # The single-desk settings other code reads are the first desk's
    assert settings.team_fingerprint == A_TEAM and settings.workstation_fingerprint == A_STATION
    # A language's text, else the base language's, else English
    assert wmf.text("name", "fr") == "Confiance et sécurité"
    assert wmf.text("name", "pt_BR") == "Trust and Safety"
    assert fa.text("name", "fa") == "میز جامعهٔ فارسی"
    # A report to the Persian desk, and also to the central one, goes to both (sorted)
    assert route(settings, "fa-community", also_central=True) == ("fa-community", "wmf")
    assert route(settings, "fa-community", also_central=False) == ("fa-community",)
    assert route(settings, "wmf", also_central=True) == ("wmf",)
    assert recipients(settings, ["fa-community", "wmf"]) == (F_TEAM, A_TEAM, A_TWO)
    # A drop with several desks needs a choice, and an unknown desk is refused
    with pytest.raises(UnknownDeskError, match="choose who reads your report"):
        route(settings, None, also_central=False)
    with pytest.raises(UnknownDeskError):
        desk_by_id(settings, "nope")
    # Rows from before desks ("default") are the first desk's, no other's
    assert stored_ids(settings, "wmf") == ("wmf", BUILTIN_ID)
    assert stored_ids(settings, "fa-community") == ("fa-community",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('id = "fa-community"', 'id = "Fa Desk"'), "desks\\[1\\].id"),
        (('id = "fa-community"', 'id = "wmf"'), "desk 'wmf' is configured twice"),
        (
            ('languages = ["fa"]', 'central = true\nlanguages = ["fa"]'),
            "only one desk may be central",
        ),
        ((f'team_fingerprint = "{F_TEAM}"', 'team_fingerprint = "1234"'), "not a 40-hex-digit"),
        ((f'team_fingerprint = "{F_TEAM}"\n', ""), "desk 'fa-community' has no team_fingerprint"),
        ((f'"{F_STATION}"', f'"{A_STATION}"'), "the same workstation_fingerprint"),
        (('en = "Persian community desk"\n', ""), "needs a name in English"),
        (
            ('languages = ["fa"]', 'languages = ["fa"]\ncolour = "red"'),
            "unknown setting 'desks.colour'",
        ),
    ],
)
def test_a_wrong_desk_is_refused_naming_what_is_wrong(
    data_dir: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(with_desks(data_dir, TWO_DESKS.replace(*change, 1)))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Write to <b>us</b>", "markup"),
        ("See https://example.org/help", "URL"),
        ("Mail desk@example.org", "e-mail"),
        ("Our site: example.org", "domain"),
        ("Our onion: abcdefghijklmnop.onion", "onion"),
        ("Trust &amp; Safety", "markup"),
    ],
)
def test_operator_text_with_markup_or_an_address_is_refused(
    data_dir: Path, text: str, found: str
) -> None:
    desks = TWO_DESKS.replace('en = "Everyone, anywhere"', f'en = "{text}"')
    with pytest.raises(SettingsError, match=f"desk 'wmf'.*{found}"):
        load(with_desks(data_dir, desks))


def test_top_level_keys_and_desks_together_are_refused(data_dir: Path) -> None:
    config = with_desks(data_dir, TWO_DESKS, team_fingerprint=A_TEAM)
    with pytest.raises(SettingsError, match="'team_fingerprint' is set at the top level"):
        load(config)


def test_report_categories_are_a_subset_in_the_deployments_order(data_dir: Path) -> None:
    config = data_dir / "config.toml"
    original = config.read_text()
    config.write_text('report_categories = ["threats", "harassment", "ucoc"]\n' + original)
    assert load(config).report_categories == ("threats", "harassment", "ucoc")
    config.write_text('report_categories = ["harassment", "gossip"]\n' + original)
    with pytest.raises(SettingsError, match="'gossip' is no category"):
        load(config)
    config.write_text('report_categories = ["legal", "legal"]\n' + original)
    with pytest.raises(SettingsError, match="names a category twice"):
        load(config)
    config.write_text("report_categories = []\n" + original)
    with pytest.raises(SettingsError, match="non-empty list"):
        load(config)


# -- securedrop-wm desk ... ------------------------------------------------------------


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_desk_commands_add_list_show_change_keys_and_remove(
    data_dir: Path, responders: Responders
) -> None:
    config = data_dir / "config.toml"
    team, second = responders.team_fingerprint, responders.second_fingerprint
    # Given a one-team drop, when a desk is added
    code, out = run(
        config, "desk", "add", "fa", "--name", "en=Persian desk", "--name", "fa=میز فارسی",
        "--serves", "en=Persian speakers, anywhere", "--language", "fa",
        "--team-key", str(responders.second_public),
    )  # fmt: skip
    assert code == 0, out
    # Then the team became the central desk "default", with its keys, and the new desk follows
    settings = load(config)
    default, fa = settings.desks
    assert (default.id, default.central, default.is_builtin) == ("default", True, True)
    assert default.responder_fingerprints == (team, second)
    assert default.workstation_fingerprint == responders.workstation_fingerprint
    assert (fa.id, fa.central, fa.responder_fingerprints) == ("fa", False, (second,))
    assert fa.text("name", "fa") == "میز فارسی" and fa.languages == ("fa",)
    code, out = run(config, "desk", "list")
    assert out.splitlines() == [
        "default\tcentral\tThe response team\tworkstation key set",
        "fa\t-\tPersian desk\tno workstation key",
    ]
    code, out = run(config, "desk", "show", "fa")
    assert "serves [en]: Persian speakers, anywhere" in out and "workstation key: (none" in out
    # And a token names its desk, which a drop with several must be told
    assert (
        run(config, "transfer-token", "create", "fa-watch", "--desk", "fa", "--status-only")[0] == 0
    )
    code, out = run(config, "transfer-token", "create", "nodesk")
    assert code != 0 and "--desk" in out
    assert run(config, "transfer-token", "list")[1].endswith("\tstatus-only\tfa\n")
    # The single-team key commands refuse, and say what to use
    code, out = run(config, "team-key", "set", str(responders.team_public))
    assert code != 0 and "desk set-key" in out
    # set-key adds and removes a responder key of one desk
    assert (
        run(config, "desk", "set-key", "fa", "add-responder", str(responders.team_public))[0] == 0
    )
    assert load(config).desks[1].responder_fingerprints == (second, team)
    assert run(config, "desk", "set-key", "fa", "remove-responder", team)[0] == 0
    assert load(config).desks[1].responder_fingerprints == (second,)
    # A desk with operator text holding a link is refused, and nothing changes
    before = config.read_text()
    code, out = run(
        config, "desk", "add", "ru", "--name", "en=See https://example.org",
        "--team-key", str(responders.second_public),
    )  # fmt: skip
    assert code != 0 and "URL" in out and config.read_text() == before
    # A desk waiting for a report cannot be removed; one that waits for nothing can
    drop = open_drop(load(config))
    try:
        login = sources.create_source(drop, generate_codename())  # type: ignore[arg-type]
        fields = sources.ReportFields(category="threats", what_happened="Help")
        sources.submit_report(drop, login, fields, [], desks=("fa",))
    finally:
        drop.close()
    code, out = run(config, "desk", "remove", "fa")
    assert code != 0 and "still has 1 pending item" in out
    # And removing the central desk revokes its tokens; the other desk is left alone
    assert run(config, "transfer-token", "create", "old-laptop", "--desk", "default")[0] == 0
    code, out = run(config, "desk", "remove", "default")
    assert code == 0 and "1 transfer token(s) revoked" in out, out
    assert [d.id for d in load(config).desks] == ["fa"]
    assert run(config, "transfer-token", "list")[1].startswith("fa-watch\t")
    assert len(run(config, "transfer-token", "list")[1].splitlines()) == 1
    code, out = run(config, "desk", "remove", "fa")
    assert code != 0
