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
            seen: set[str] = set()
            for j, element in enumerate(elements):
                where = f"{at}/elements/{j}"
                errors += _check_element(element, where)
                action_id = element.get("action_id") if isinstance(element, dict) else None
                if isinstance(action_id, str):
                    if action_id in seen:
                        errors.append(f"duplicate action_id [json-pointer:{where}/action_id]")
                    seen.add(action_id)
    elif kind == "input":
        errors += _check_text(
            block.get("label"), f"{at}/label", max_len=2000, types=("plain_text",)
        )
        element = block.get("element")
        if not isinstance(element, dict) or element.get("type") != "plain_text_input":
            errors.append(f"failed to match all allowed schemas [json-pointer:{at}/element]")
        else:
            errors += _check_input(element, f"{at}/element")
        if "optional" in block and not isinstance(block["optional"], bool):
            errors.append(f"expected boolean [json-pointer:{at}/optional]")
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
        options, groups = element.get("options"), element.get("option_groups")
        if (options is None) == (groups is None):
            return [*errors, f"must provide either options or option_groups [json-pointer:{at}]"]
        every: list[Any] = []
        if options is not None:
            errors += _check_options(options, f"{at}/options")
            every = list(options) if isinstance(options, list) else []
        else:
            if not isinstance(groups, list) or not 1 <= len(groups) <= 100:
                return [*errors, f"must be a list of 1-100 items [json-pointer:{at}/option_groups]"]
            for g, group in enumerate(groups):
                where = f"{at}/option_groups/{g}"
                if not isinstance(group, dict):
                    errors.append(f"failed to match all allowed schemas [json-pointer:{where}]")
                    continue
                errors += _check_text(
                    group.get("label"), f"{where}/label", max_len=75, types=("plain_text",)
                )
                errors += _check_options(group.get("options"), f"{where}/options")
                if isinstance(group.get("options"), list):
                    every += group["options"]
        initial = element.get("initial_option")
        if initial is not None and initial not in every:
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


def _check_options(options: Any, at: str) -> list[str]:
    """A select's options: 1-100, each a plain_text text and a distinct value."""
    if not isinstance(options, list) or not 1 <= len(options) <= 100:
        return [f"must be a list of 1-100 items [json-pointer:{at}]"]
    errors: list[str] = []
    values: set[str] = set()
    for k, option in enumerate(options):
        errors += _check_option(option, f"{at}/{k}")
        value = option.get("value") if isinstance(option, dict) else None
        if isinstance(value, str):
            if value in values:
                errors.append(f"duplicate option value [json-pointer:{at}/{k}/value]")
            values.add(value)
    return errors


def _check_input(element: dict[str, Any], at: str) -> list[str]:
    errors = _check_string(element.get("action_id"), f"{at}/action_id", max_len=255, required=False)
    high = element.get("max_length", 3000)
    if not isinstance(high, int) or not 1 <= high <= 3000:
        errors.append(f"must be 1-3000 [json-pointer:{at}/max_length]")
        high = 3000
    initial = element.get("initial_value")
    if initial is not None and (not isinstance(initial, str) or len(initial) > high):
        errors.append(f"must be at most max_length characters [json-pointer:{at}/initial_value]")
    placeholder = element.get("placeholder")
    if placeholder is not None:
        errors += _check_text(placeholder, f"{at}/placeholder", max_len=150, types=("plain_text",))
    return errors


def validate_view(view: Any, *, surface: str = "modal") -> list[str]:
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
    if surface == "modal":
        errors += _check_text(view.get("title"), "/view/title", max_len=24, types=("plain_text",))
        for key in ("submit", "close"):
            if key in view:
                errors += _check_text(view[key], f"/view/{key}", max_len=24, types=("plain_text",))
        if (
            any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
            and "submit" not in view
        ):
            errors.append("a modal with inputs needs a submit button [json-pointer:/view/submit]")
    return errors
