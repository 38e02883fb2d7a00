"""The facts every benchmark prints beside its figures."""

from bench.host import host_facts


def test_host_facts_name_cores_load_and_a_positive_speed() -> None:
    facts = host_facts()
    assert facts["cores"] >= 1
    assert len(facts["load_avg"]) == 3
    assert facts["python_mips"] > 0
