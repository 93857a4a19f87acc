"""placeholder"""


def test_boot(base_url: str) -> None:
    print(base_url)
    assert base_url
