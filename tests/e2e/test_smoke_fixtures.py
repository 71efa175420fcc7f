from sqlalchemy import text


def test_engine_fixture_is_real(engine):
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from relais_outbox")).scalar() == 0


def test_amqp_vhost_is_real(amqp_uri):
    import amqp

    from relais.config import parse_amqp_uri

    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    ch = conn.channel()
    ch.queue_declare("probe", durable=False, auto_delete=True)
    conn.close()
