"""Block Kit validation, to the degree that catches what a bot really gets wrong.

The limits are Slack's published ones; error strings follow the shape Slack returns with
`invalid_blocks` ("<reason> [json-pointer:/blocks/0/text/text]").
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50  # a message
MAX_VIEW_BLOCKS = 100  # a modal or the Home tab
TEXT_TYPES = ("plain_text", "mrkdwn")
KNOWN_BLOCKS = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)


def validate_blocks(
    blocks: list[Any], *, max_blocks: int = MAX_BLOCKS, root: str = "/blocks"
) -> list[str]:
    """Every problem found, or [] when Slack would accept the blocks."""
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:{root}]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{root}/{i}"
        if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCKS:
            errors.append(f"failed to match all allowed schemas [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                errors.append(f"must be 1-255 characters [json-pointer:{at}/block_id]")
            elif block_id in seen_ids:
                errors.append(f"duplicate block_id [json-pointer:{at}/block_id]")
            else:
                seen_ids.add(block_id)
        errors.extend(_check_block(block, at))
    return errors


def _check_block(block: dict[str, Any], at: str) -> list[str]:
    kind = block["type"]
    errors: list[str] = []
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            errors.append(f"must provide either text or fields [json-pointer:{at}]")
        if text is not None:
            errors += _check_text(text, f"{at}/text", max_len=3000)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > 10:
                errors.append(f"must be a list of at most 10 items [json-pointer:{at}/fields]")
            else:
                for j, item in enumerate(fields):
                    errors += _check_text(item, f"{at}/fields/{j}", max_len=2000)
        if "accessory" in block:
            errors += _check_element(block["accessory"], f"{at}/accessory")
    elif kind == "header":
        errors += _check_text(block.get("text"), f"{at}/text", max_len=150, types=("plain_text",))
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            errors.append(f"must be a list of 1-10 items [json-pointer:{at}/elements]")
        else:
            for j, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") == "image":
                    continue
                errors += _check_text(el, f"{at}/elements/{j}", max_len=3000)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not 0 < len(text) <= 12000:
            errors.append(f"must be 1-12000 characters [json-pointer:{at}/text]")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            errors.append(f"must be a list of 1-25 items [json-pointer:{at}/elements]")
        else:
            for j, element in enumerate(elements):
                errors += _check_element(element, f"{at}/elements/{j}")
    elif kind == "image":
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not 0 < len(alt) <= 2000:
            errors.append(f"must be 1-2000 characters [json-pointer:{at}/alt_text]")
        if "image_url" not in block and "slack_file" not in block:
            errors.append(f"must provide image_url or slack_file [json-pointer:{at}]")
    elif kind == "rich_text" and not isinstance(block.get("elements"), list):
        errors.append(f"must be a list [json-pointer:{at}/elements]")
    return errors


def _check_text(
    obj: Any, at: str, *, max_len: int, types: tuple[str, ...] = TEXT_TYPES
) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in types:
        return [f"failed to match all allowed schemas [json-pointer:{at}]"]
    text = obj.get("text")
    if not isinstance(text, str):
        return [f"expected string [json-pointer:{at}/text]"]
    if not text:
        return [f"must be more than 0 characters [json-pointer:{at}/text]"]
    if len(text) > max_len:
        return [f"must be less than {max_len + 1} characters [json-pointer:{at}/text]"]
    return []


def _check_string(value: Any, at: str, *, max_len: int, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value:
        return [f"must be a non-empty string [json-pointer:{at}]"]
    if len(value) > max_len:
        return [f"must be less than {max_len + 1} characters [json-pointer:{at}]"]
    return []


def _check_option(option: Any, at: str) -> list[str]:
    if not isinstance(option, dict):
        return [f"failed to match all allowed schemas [json-pointer:{at}]"]
    return [
        *_check_text(option.get("text"), f"{at}/text", max_len=75, types=("plain_text",)),
        *_check_string(option.get("value"), f"{at}/value", max_len=150),
    ]


def _check_element(element: Any, at: str) -> list[str]:
    """Interactive elements: buttons, static selects and overflow menus (what an app's
    Home tab and messages use), with Slack's published limits."""
    if not isinstance(element, dict):
        return [f"failed to match all allowed schemas [json-pointer:{at}]"]
    kind = element.get("type")
    errors = _check_string(element.get("action_id"), f"{at}/action_id", max_len=255, required=False)
    if kind == "button":
        errors += _check_text(element.get("text"), f"{at}/text", max_len=75, types=("plain_text",))
        errors += _check_string(element.get("value"), f"{at}/value", max_len=2000, required=False)
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(f"must be primary or danger [json-pointer:{at}/style]")
    elif kind == "static_select":
        if "placeholder" in element:  # optional
            errors += _check_text(
                element["placeholder"], f"{at}/placeholder", max_len=150, types=("plain_text",)
            )
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 100:
            return [*errors, f"must be a list of 1-100 items [json-pointer:{at}/options]"]
        for j, option in enumerate(options):
            errors += _check_option(option, f"{at}/options/{j}")
        initial = element.get("initial_option")
        if initial is not None and initial not in options:
            errors.append(f"must match one of the options [json-pointer:{at}/initial_option]")
    elif kind == "overflow":
        options = element.get("options")
        if not isinstance(options, list) or not 2 <= len(options) <= 5:
            return [*errors, f"must be a list of 2-5 items [json-pointer:{at}/options]"]
        for j, option in enumerate(options):
            errors += _check_option(option, f"{at}/options/{j}")
    else:
        errors.append(f"failed to match all allowed schemas [json-pointer:{at}]")
    return errors


def validate_view(view: Any, *, surface: str) -> list[str]:
    """Every problem of a view for `surface` ("home", "modal"), [] when Slack takes it."""
    if not isinstance(view, dict):
        return ["failed to match all allowed schemas [json-pointer:/view]"]
    errors: list[str] = []
    if view.get("type") != surface:
        errors.append(f"must be {surface} [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [*errors, "must be a list [json-pointer:/view/blocks]"]
    errors += validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS, root="/view/blocks")
    for name, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
        errors += _check_string(view.get(name), f"/view/{name}", max_len=limit, required=False)
    return errors
