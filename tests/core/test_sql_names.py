"""A SQL server named in a message or a health report never shows its password, and a
schema name is checked before it is quoted into a statement."""

from butterflyfx.core.sql import PLAIN_NAME, masked_dsn, quoted, server_place


def test_a_password_in_a_dsn_or_a_drivers_message_is_masked():
    dsn = "postgresql://app:s3cr%21t@db.internal:6432/prod"
    assert masked_dsn(dsn) == "postgresql://app:***@db.internal:6432/prod"
    said = f"connection to {dsn} refused; retrying {dsn}"
    assert "s3cr" not in masked_dsn(said) and masked_dsn(said).count("***@") == 2
    assert masked_dsn("postgresql://app@db/prod") == "postgresql://app@db/prod"


def test_a_server_is_named_by_host_port_and_database():
    assert server_place("postgresql://app:pw@db.internal:6432/prod") == "db.internal:6432/prod"
    assert server_place("postgresql:///prod") == "localhost:5432/prod"
    assert "pw" not in server_place("postgresql://app:pw@db:notaport/prod")


def test_only_plain_schema_names_pass_and_quoting_doubles_quotes():
    assert PLAIN_NAME.fullmatch("butterflyfx_auth")
    assert not PLAIN_NAME.fullmatch('x"; DROP TABLE api_keys; --')
    assert not PLAIN_NAME.fullmatch("a" * 64)
    assert quoted('we"ird') == '"we""ird"'
