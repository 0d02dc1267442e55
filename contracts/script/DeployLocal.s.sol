// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {CheatCodes} from "../test/utils/Vm.sol";
import {DeployMarketplace} from "./DeployMarketplace.sol";

/// @notice Deploys the marketplace on a local chain (anvil) and writes the addresses as JSON.
///
///   forge script script/DeployLocal.s.sol --rpc-url $RPC --broadcast
///
/// Environment (all optional): DEPLOYER_PRIVATE_KEY and FUNDING_PRIVATE_KEY (default: anvil accounts 0
/// and 1), DEPLOYMENT_FILE (default deployments/local.json, relative to contracts/; must stay under
/// deployments/), and the economics: MIN_PRICE_PER_SECOND, MAX_PRICE_PER_SECOND, PROVIDER_MIN_STAKE,
/// MODEL_MIN_STAKE, BID_FEE, MAX_SESSION_DURATION, FUNDING_AMOUNT. Defaults are the Base mainnet values.
contract DeployLocal is DeployMarketplace, CheatCodes {
    uint256 private constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 private constant ANVIL_KEY_1 = 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d;

    function run() external returns (Deployment memory d_) {
        uint256 deployerKey_ = vm.envOr("DEPLOYER_PRIVATE_KEY", ANVIL_KEY_0);
        uint256 fundingKey_ = vm.envOr("FUNDING_PRIVATE_KEY", ANVIL_KEY_1);
        address funding_ = vm.addr(fundingKey_);
        uint256 startBlock_ = block.number;

        MarketplaceConfig memory cfg_ = MarketplaceConfig({
            token: address(0),
            delegateRegistry: address(0),
            fundingAccount: funding_,
            maxSessionDuration: uint128(vm.envOr("MAX_SESSION_DURATION", uint256(7 days))),
            bidMinPricePerSecond: vm.envOr("MIN_PRICE_PER_SECOND", uint256(1e13)),
            bidMaxPricePerSecond: vm.envOr("MAX_PRICE_PER_SECOND", uint256(1e16)),
            providerMinimumStake: vm.envOr("PROVIDER_MIN_STAKE", uint256(0.1 ether)),
            modelMinimumStake: vm.envOr("MODEL_MIN_STAKE", uint256(0.1 ether)),
            bidFee: vm.envOr("BID_FEE", uint256(0.1 ether)),
            pools: _defaultPools()
        });

        vm.startBroadcast(deployerKey_);
        d_ = _deployMarketplace(cfg_);
        IERC20(d_.token).transfer(funding_, vm.envOr("FUNDING_AMOUNT", uint256(1_000_000 ether)));
        vm.stopBroadcast();

        // The funding account pays providers of non-direct sessions through transferFrom.
        vm.startBroadcast(fundingKey_);
        IERC20(d_.token).approve(d_.diamond, type(uint256).max);
        vm.stopBroadcast();

        _write(d_, vm.addr(deployerKey_), funding_, startBlock_);
    }

    function _write(Deployment memory d_, address owner_, address funding_, uint256 startBlock_) private {
        string memory k_ = "deployment";
        vm.serializeUint(k_, "chainId", block.chainid);
        vm.serializeUint(k_, "startBlock", startBlock_);
        vm.serializeAddress(k_, "owner", owner_);
        vm.serializeAddress(k_, "fundingAccount", funding_);
        vm.serializeAddress(k_, "diamond", d_.diamond);
        vm.serializeAddress(k_, "morToken", d_.token);
        vm.serializeAddress(k_, "delegateRegistry", d_.delegateRegistry);
        vm.serializeAddress(k_, "multicall3", d_.multicall3);
        vm.serializeAddress(k_, "providerRegistryFacet", d_.providerRegistryFacet);
        vm.serializeAddress(k_, "modelRegistryFacet", d_.modelRegistryFacet);
        vm.serializeAddress(k_, "marketplaceFacet", d_.marketplaceFacet);
        vm.serializeAddress(k_, "sessionRouterFacet", d_.sessionRouterFacet);
        string memory json_ = vm.serializeAddress(k_, "delegationFacet", d_.delegationFacet);

        string memory path_ = vm.envOr("DEPLOYMENT_FILE", string("deployments/local.json"));
        vm.createDir("deployments", true);
        vm.writeJson(json_, path_);
    }
}
