def test_registered_but_never_requested(http_stub):
    http_stub.get("https://accounts.example.com/api/users/7", json={"id": 7})
