// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {IProviderStorage} from "../../interfaces/storage/IProviderStorage.sol";
import {IModelStorage} from "../../interfaces/storage/IModelStorage.sol";
import {IBidStorage} from "../../interfaces/storage/IBidStorage.sol";
import {ISessionStorage} from "../../interfaces/storage/ISessionStorage.sol";
import {IStatsStorage} from "../../interfaces/storage/IStatsStorage.sol";

/// @notice The namespaced storage of every facet group, with the reference's slot names and field order, so
///         that any facet can read another group's state without inheriting its external getters.
library LibStorages {
    bytes32 internal constant PROVIDERS_STORAGE_SLOT = keccak256("diamond.standard.providers.storage");
    bytes32 internal constant MODELS_STORAGE_SLOT = keccak256("diamond.standard.models.storage");
    bytes32 internal constant BIDS_STORAGE_SLOT = keccak256("diamond.standard.bids.storage");
    bytes32 internal constant MARKET_STORAGE_SLOT = keccak256("diamond.standard.market.storage");
    bytes32 internal constant SESSIONS_STORAGE_SLOT = keccak256("diamond.standard.sessions.storage");
    bytes32 internal constant STATS_STORAGE_SLOT = keccak256("diamond.standard.stats.storage");
    bytes32 internal constant DELEGATION_STORAGE_SLOT = keccak256("diamond.standard.delegation.storage");

    struct ProvidersStorage {
        uint256 providerMinimumStake;
        mapping(address => IProviderStorage.Provider) providers;
        EnumerableSet.AddressSet activeProviders;
    }

    struct ModelsStorage {
        uint256 modelMinimumStake;
        EnumerableSet.Bytes32Set modelIds;
        mapping(bytes32 => IModelStorage.Model) models;
        EnumerableSet.Bytes32Set activeModels;
    }

    struct BidsStorage {
        address token;
        mapping(bytes32 => IBidStorage.Bid) bids;
        mapping(bytes32 => EnumerableSet.Bytes32Set) modelBids;
        mapping(bytes32 => EnumerableSet.Bytes32Set) modelActiveBids;
        mapping(address => EnumerableSet.Bytes32Set) providerBids;
        mapping(address => EnumerableSet.Bytes32Set) providerActiveBids;
        mapping(bytes32 => uint256) providerModelNonce;
    }

    struct MarketStorage {
        uint256 feeBalance;
        uint256 bidFee;
        uint256 bidMinPricePerSecond;
        uint256 bidMaxPricePerSecond;
    }

    struct SessionsStorage {
        address fundingAccount;
        ISessionStorage.Pool[] pools;
        uint256 providersTotalClaimed;
        uint256 sessionNonce;
        mapping(bytes32 => ISessionStorage.Session) sessions;
        uint128 maxSessionDuration;
        mapping(address => EnumerableSet.Bytes32Set) userSessions;
        mapping(address => EnumerableSet.Bytes32Set) providerSessions;
        mapping(bytes32 => EnumerableSet.Bytes32Set) modelSessions;
        mapping(address => ISessionStorage.OnHold[]) userStakesOnHold;
        mapping(bytes => bool) isProviderApprovalUsed;
    }

    struct StatsStorage {
        mapping(bytes32 => mapping(address => IStatsStorage.ProviderModelStats)) providerModelStats;
        mapping(bytes32 => IStatsStorage.ModelStats) modelStats;
    }

    struct DelegationStorage {
        address registry;
    }

    function providers() internal pure returns (ProvidersStorage storage s_) {
        bytes32 slot_ = PROVIDERS_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function models() internal pure returns (ModelsStorage storage s_) {
        bytes32 slot_ = MODELS_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function bids() internal pure returns (BidsStorage storage s_) {
        bytes32 slot_ = BIDS_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function market() internal pure returns (MarketStorage storage s_) {
        bytes32 slot_ = MARKET_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function sessions() internal pure returns (SessionsStorage storage s_) {
        bytes32 slot_ = SESSIONS_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function stats() internal pure returns (StatsStorage storage s_) {
        bytes32 slot_ = STATS_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function delegation() internal pure returns (DelegationStorage storage s_) {
        bytes32 slot_ = DELEGATION_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function isProviderActive(address provider_) internal view returns (bool) {
        IProviderStorage.Provider storage p_ = providers().providers[provider_];
        return p_.createdAt != 0 && !p_.isDeleted;
    }

    function isModelActive(bytes32 modelId_) internal view returns (bool) {
        IModelStorage.Model storage m_ = models().models[modelId_];
        return m_.createdAt != 0 && !m_.isDeleted;
    }

    function isBidActive(bytes32 bidId_) internal view returns (bool) {
        IBidStorage.Bid storage b_ = bids().bids[bidId_];
        return b_.createdAt != 0 && b_.deletedAt == 0;
    }
}
