import time, os
def test_probe(base_url):
    open("/tmp/probe/url", "w").write(base_url)
    while not os.path.exists("/tmp/probe/stop"):
        time.sleep(1)
