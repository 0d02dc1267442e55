// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IModelRegistry} from "../../interfaces/facets/IModelRegistry.sol";
import {FacetBase} from "../utils/FacetBase.sol";
import {LibStorages} from "../storages/LibStorages.sol";
import {LibPaginator} from "../../libs/LibPaginator.sol";

/// @notice Model facet: register or update a model (stake, metadata), deregister (full refund).
contract ModelRegistry is IModelRegistry, FacetBase {
    using EnumerableSet for EnumerableSet.Bytes32Set;
    using LibPaginator for EnumerableSet.Bytes32Set;

    function __ModelRegistry_init() external ownerInitializer(LibStorages.MODELS_STORAGE_SLOT) {}

    function modelSetMinStake(uint256 modelMinimumStake_) external onlyOwner {
        LibStorages.models().modelMinimumStake = modelMinimumStake_;
        emit ModelMinimumStakeUpdated(modelMinimumStake_);
    }

    function modelRegister(
        address modelOwner_,
        bytes32 baseModelId_,
        bytes32 ipfsCID_,
        uint256 fee_,
        uint256 amount_,
        string calldata name_,
        string[] memory tags_
    ) external {
        _validateDelegatee(msg.sender, modelOwner_, RULES_MODEL);

        LibStorages.ModelsStorage storage s_ = LibStorages.models();
        bytes32 modelId_ = getModelId(modelOwner_, baseModelId_);
        Model storage model = s_.models[modelId_];

        uint256 newStake_ = model.stake + amount_;
        if (newStake_ < s_.modelMinimumStake) revert ModelStakeTooLow(newStake_, s_.modelMinimumStake);

        if (model.createdAt == 0) {
            s_.modelIds.add(modelId_);
            model.createdAt = uint128(block.timestamp);
            model.owner = modelOwner_;
        }
        model.stake = newStake_;
        model.ipfsCID = ipfsCID_;
        model.fee = fee_;
        model.name = name_;
        model.tags = tags_;
        model.isDeleted = false;
        s_.activeModels.add(modelId_);

        if (amount_ > 0) SafeERC20.safeTransferFrom(_token(), modelOwner_, address(this), amount_);

        emit ModelRegisteredUpdated(modelOwner_, modelId_);
    }

    function modelDeregister(bytes32 modelId_) external {
        LibStorages.ModelsStorage storage s_ = LibStorages.models();
        Model storage model = s_.models[modelId_];

        _validateDelegatee(msg.sender, model.owner, RULES_MODEL);

        if (LibStorages.bids().modelActiveBids[modelId_].length() > 0) revert ModelHasActiveBids();
        if (model.isDeleted) revert ModelHasAlreadyDeregistered();

        uint256 refund_ = model.stake;
        model.stake = 0;
        model.isDeleted = true;
        s_.activeModels.remove(modelId_);

        if (refund_ > 0) SafeERC20.safeTransfer(_token(), model.owner, refund_);

        emit ModelDeregistered(model.owner, modelId_);
    }

    function getModelId(address account_, bytes32 baseModelId_) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(account_, baseModelId_));
    }

    function getModel(bytes32 modelId_) external view returns (Model memory) {
        return LibStorages.models().models[modelId_];
    }

    function getModelIds(uint256 offset_, uint256 limit_) external view returns (bytes32[] memory, uint256) {
        return LibStorages.models().modelIds.page(offset_, limit_);
    }

    function getModelMinimumStake() external view returns (uint256) {
        return LibStorages.models().modelMinimumStake;
    }

    function getActiveModelIds(uint256 offset_, uint256 limit_) external view returns (bytes32[] memory, uint256) {
        return LibStorages.models().activeModels.page(offset_, limit_);
    }

    function getIsModelActive(bytes32 modelId_) external view returns (bool) {
        return LibStorages.isModelActive(modelId_);
    }
}
