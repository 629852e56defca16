"""``EventList.table()``: PyTorch's profiler table, same layout and numbers."""
from __future__ import annotations

__all__ = ["build_table", "format_time"]


def format_time(time_us):
    if time_us >= 1e6:
        return f"{time_us / 1e6:.3f}s"
    if time_us >= 1e3:
        return f"{time_us / 1e3:.3f}ms"
    return f"{time_us:.3f}us"


def _format_time_share(time_us, total_us):
    if total_us == 0:
        return "NaN"
    return f"{time_us * 100.0 / total_us:.2f}%"



def build_table(events, sort_by, row_limit, max_src_column_width, max_name_column_width,
                 max_shapes_column_width, header, top_level_events_only, time_unit, use_device):
    # Same layout and numbers as torch.autograd.profiler_util._build_table.
    if len(events) == 0:
        return ""
    if sort_by is not None:
        attr = sort_by.replace("cuda", "device").replace("xpu", "device")
        if not hasattr(events[0], attr):
            raise AttributeError(f"table(sort_by={sort_by!r}): events have no attribute "
                                 f"{attr!r}; use e.g. 'cpu_time_total', 'self_cpu_time_total', "
                                 f"'count' or 'cuda_time_total'")
        events = sorted(events, key=lambda e: getattr(e, attr), reverse=True)
    has_device = use_device is not None
    has_shapes = any(e.input_shapes for e in events)
    stacks = [e.stack for e in events if e.stack]
    name_w = max(len(e.key) for e in events) + 4
    if max_name_column_width is not None:
        name_w = min(name_w, max_name_column_width)
    shapes_w = max(len(str(e.input_shapes)) for e in events) + 4
    if max_shapes_column_width is not None:
        shapes_w = min(shapes_w, max_shapes_column_width)
    W = 12
    headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    dev = (use_device or "").upper()
    if has_device:
        headers += [f"Self {dev}", f"Self {dev} %", f"{dev} total", f"{dev} time avg"]
    headers.append("# of Calls")
    widths = [(name_w, ">")] + [(W, ">")] * (len(headers) - 1)
    if has_shapes:
        headers.append("Input Shapes")
        widths.append((shapes_w, ">"))
    src_w = None
    if stacks:
        src_w = max(len(s) for st in stacks for s in st) + 4
        if max_src_column_width is not None:
            src_w = min(src_w, max_src_column_width)
        headers.append("Source Location")
        widths.append((src_w, "<"))
    row_format = "".join("{: " + d + str(w) + "}  " for w, d in widths)
    sep = "".join("-" * w + "  " for w, _ in widths)
    line_len = sum(w + 2 for w, _ in widths) - 2

    def t(us):
        if time_unit == "s":
            return f"{us / 1e6:.3f}s"
        if time_unit == "ms":
            return f"{us / 1e3:.3f}ms"
        if time_unit == "us":
            return f"{us:.3f}us"
        return format_time(us)

    def trim(path):
        if len(path) > src_w:
            path = path[len(path) - src_w:]
            if len(path) > 3:
                path = "..." + path[3:]
        return path

    sum_cpu = sum(e.self_cpu_time_total for e in events)
    sum_dev = sum(e.self_device_time_total for e in events)
    lines = []
    if header is not None:
        lines += ["=" * line_len, header]
    if top_level_events_only:
        lines += ["=" * line_len, "This report only display top-level ops statistics"]
    lines += [sep, row_format.format(*headers), sep]
    shown = 0
    for e in events:
        if shown == row_limit:
            break
        if top_level_events_only and e.cpu_parent is not None:
            continue
        shown += 1
        name = e.key
        if max_name_column_width is not None and len(name) >= max_name_column_width - 3:
            name = name[:max_name_column_width - 3] + "..."
        row = [name, _format_time_share(e.self_cpu_time_total, sum_cpu), t(e.self_cpu_time_total),
               _format_time_share(e.cpu_time_total, sum_cpu), t(e.cpu_time_total), t(e.cpu_time)]
        if has_device:
            row += [t(e.self_device_time_total),
                    _format_time_share(e.self_device_time_total, sum_dev),
                    t(e.device_time_total), t(e.device_time)]
        row.append(e.count)
        if has_shapes:
            row.append(str(e.input_shapes)[:shapes_w])
        if stacks:
            row.append(trim(e.stack[0]) if e.stack else "")
        lines.append(row_format.format(*row))
        if stacks:
            blank = [""] * (len(headers) - 1)
            for entry in e.stack[1:]:
                lines.append(row_format.format(*(blank + [trim(entry)])))
            lines.append(row_format.format(*(blank + [""])))
    lines.append(sep)
    lines.append(f"Self CPU time total: {t(sum_cpu)}")
    if has_device:
        lines.append(f"Self {dev} time total: {t(sum_dev)}")
    return "\n".join(lines) + "\n"
