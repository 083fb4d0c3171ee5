"""The fake Binance's ``GET exchangeInfo``: its rate limits and every symbol's filters."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tests.fakes.binance.market import Symbol, fmt
from tests.fakes.binance.params import ApiError, check_params

if TYPE_CHECKING:
    from tests.fakes.binance.exchange import FakeBinance


def exchange_info(fake: FakeBinance, params: dict[str, str]) -> dict[str, Any]:
    if fake._spot:
        check_params(params, ("symbol", "symbols"))
        chosen = list(fake._symbols.values())
        if "symbol" in params and "symbols" in params:
            raise ApiError(400, -1106, "Parameter 'symbols' sent when not required.")
        if "symbol" in params:
            chosen = [fake._param_symbol(params)]
        elif "symbols" in params:
            try:
                names = json.loads(params["symbols"])
            except ValueError:
                names = None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'; "
                                "legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]"
                                "{1,20}\"){0,}){0,1}\\]$'.")  # fmt: skip
            chosen = [fake._param_symbol({"symbol": n}) for n in names]
        return {
            "timezone": "UTC",
            "serverTime": fake.now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": fake.weight_limit,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": 100,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "DAY",
                    "intervalNum": 1,
                    "limit": 200000,
                },
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [_spot_symbol_info(s) for s in chosen],
        }
    check_params(params, ())
    return {
        "timezone": "UTC",
        "serverTime": fake.now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": fake.weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": q, "marginAvailable": True, "autoAssetExchange": "-10000"}
            for q in sorted({s.quote for s in fake._symbols.values()})
        ],
        "symbols": [_usdm_symbol_info(s) for s in fake._symbols.values()],
    }


def _spot_symbol_info(s: Symbol) -> dict[str, Any]:
    tick, step = fmt(1, s.price_dec, 8), fmt(1, s.qty_dec, 8)
    return {
        "symbol": s.name, "status": s.status, "baseAsset": s.base, "baseAssetPrecision": 8,
        "quoteAsset": s.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "amendAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick,
             "maxPrice": fmt(10**6 * 10**s.price_dec, s.price_dec, 8), "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step,
             "maxQty": fmt(9 * 10**6 * 10**s.qty_dec, s.qty_dec, 8), "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000",
             "maxQty": fmt(9 * 10**4 * 10**s.qty_dec, s.qty_dec, 8), "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False,
             "avgPriceMins": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip


def _usdm_symbol_info(s: Symbol) -> dict[str, Any]:
    tick, step = fmt(1, s.price_dec, s.price_dec), fmt(1, s.qty_dec, s.qty_dec)
    return {
        "symbol": s.name, "pair": s.name, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": s.status,
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": s.base, "quoteAsset": s.quote, "marginAsset": s.quote,
        "pricePrecision": s.price_dec, "quantityPrecision": s.qty_dec,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
        "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick,
             "maxPrice": fmt(10**7 * 10**s.price_dec, s.price_dec, s.price_dec),
             "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step,
             "maxQty": fmt(10**6 * 10**s.qty_dec, s.qty_dec, s.qty_dec), "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": step,
             "maxQty": fmt(10**5 * 10**s.qty_dec, s.qty_dec, s.qty_dec), "stepSize": step},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }  # fmt: skip
