"""`picojepa-run --help`: its options grouped by what they are for (they are many, and most apply
to one kind of input only)."""
from __future__ import annotations

import click


class Sections(click.Command):
    """--help with the options under a heading each; an option no section names goes under Other."""

    SECTIONS = (
        ("Bundle and model", ("bundle", "provider", "vote_method", "variant", "threads", "region_text")),
        ("Files", ("clips", "placement", "decode_device", "prefetch", "labels_from_folders", "no_progress")),
        ("Windows (files and live sources)", ("window", "stride")),
        ("Live sources", ("streams_file", "cameras_file", "duration", "on_change", "reconnect_s", "rtsp_transport",
                          "decoder_threads", "skip_frames", "motion_gate", "loop_filter", "full_size_convert",
                          "connect_timeout")),
        ("Edge network", ("nats_servers", "nats_token", "nats_user", "nats_password", "nats_creds",
                          "deadline_ms", "quorum")),
        ("Output", ("fmt", "publish", "stream_name", "http_listen")),
        ("Explain one clip", ("explain_clip", "out_dir")),
    )

    def format_options(self, ctx, formatter):
        rows = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        placed = set()
        for title, names in self.SECTIONS:
            got = [rows[n] for n in names if rows.get(n)]
            placed |= set(names)
            if got:
                with formatter.section(title):
                    formatter.write_dl(got)
        rest = [r for n, r in rows.items() if n not in placed and r]
        if rest:
            with formatter.section("Other"):
                formatter.write_dl(rest)
