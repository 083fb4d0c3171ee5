"""A user's filter presets: named scanner filters to load again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.models import FilterPreset
from api.accounts.user_state.owned import check_name, check_room, delete, owned, rows
from api.accounts.user_state.state import bump
from api.accounts.user_state_models import Change, PresetIn, PresetOut
from api.services.filters import ScanFilter

MAX_PRESETS = 100
"""Filter presets a user may keep."""


def _preset_out(row: FilterPreset) -> PresetOut:
    return PresetOut(
        id=row.id,
        name=row.name,
        filter=ScanFilter.model_validate(row.filter),
        updated_at=row.updated_at,
    )


async def list_presets(db: AsyncSession, user_id: int) -> list[PresetOut]:
    """The user's filter presets, oldest first."""
    return [_preset_out(row) for row in await rows(db, FilterPreset, user_id)]


async def get_preset(db: AsyncSession, user_id: int, preset_id: int) -> PresetOut:
    """One of the user's filter presets.

    Raises:
        NotFound: If the user has no preset with that id.
    """
    return _preset_out(await owned(db, FilterPreset, user_id, preset_id))


async def create_preset(
    db: AsyncSession, user_id: int, preset: PresetIn, *, max_presets: int = MAX_PRESETS
) -> Change[PresetOut]:
    """Save a filter preset.

    Raises:
        Conflict: When the user keeps `max_presets` already (`limit_reached`) or has one
            of that name (`name_taken`).
    """
    state = await bump(db, user_id)
    await check_room(db, FilterPreset, user_id, max_presets)
    await check_name(db, FilterPreset, user_id, preset.name)
    row = FilterPreset(
        user_id=user_id,
        name=preset.name,
        filter=preset.filter.model_dump(mode="json"),
        updated_at=state.updated_at,
    )
    db.add(row)
    await db.flush()
    return Change("preset", state.version, _preset_out(row))


async def update_preset(
    db: AsyncSession, user_id: int, preset_id: int, preset: PresetIn
) -> Change[PresetOut]:
    """Rename a preset and replace its filter.

    Raises:
        NotFound: If the user has no preset with that id.
        Conflict: When another of the user's presets has the name (`name_taken`).
    """
    state = await bump(db, user_id)
    row: FilterPreset = await owned(db, FilterPreset, user_id, preset_id)
    await check_name(db, FilterPreset, user_id, preset.name, preset_id)
    row.name, row.filter = preset.name, preset.filter.model_dump(mode="json")
    row.updated_at = state.updated_at
    return Change("preset", state.version, _preset_out(row))


async def delete_preset(db: AsyncSession, user_id: int, preset_id: int) -> Change[None]:
    """Delete a filter preset.

    Raises:
        NotFound: If the user has no preset with that id.
    """
    return await delete(db, FilterPreset, user_id, preset_id)
