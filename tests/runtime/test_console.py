from picojepa.core import console


def test_progress_in_a_log_file_is_a_few_plain_lines_not_a_redrawn_bar(capsys, monkeypatch):
    monkeypatch.setattr(console.sys.stderr, "isatty", lambda: False, raising=False)
    bar = console.progress(range(1000), desc="features")
    assert list(bar) == list(range(1000))
    err = capsys.readouterr().err
    assert err.splitlines() == ["features: 1000/1000"] and "\r" not in err
    monkeypatch.setattr(console, "LINE_EVERY_S", 0.0)
    b = console.progress(total=3, desc="bench")
    b.set_postfix_str("decoding")
    b.update()
    b.close()
    assert capsys.readouterr().err.splitlines() == ["bench: 1/3 (decoding)", "bench: 1/3 (decoding)"]
