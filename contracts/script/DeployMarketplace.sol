// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {LumerinDiamond} from "../src/diamond/LumerinDiamond.sol";
import {ProviderRegistry} from "../src/diamond/facets/ProviderRegistry.sol";
import {ModelRegistry} from "../src/diamond/facets/ModelRegistry.sol";
import {Marketplace} from "../src/diamond/facets/Marketplace.sol";
import {SessionRouter} from "../src/diamond/facets/SessionRouter.sol";
import {Delegation} from "../src/diamond/facets/Delegation.sol";
import {MorpheusToken} from "../src/mock/MorpheusToken.sol";
import {DelegateRegistry} from "../src/mock/DelegateRegistry.sol";
import {Multicall3} from "../src/mock/Multicall3.sol";

import {IProviderRegistry} from "../src/interfaces/facets/IProviderRegistry.sol";
import {IModelRegistry} from "../src/interfaces/facets/IModelRegistry.sol";
import {IMarketplace} from "../src/interfaces/facets/IMarketplace.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";
import {IProviderStorage} from "../src/interfaces/storage/IProviderStorage.sol";
import {IModelStorage} from "../src/interfaces/storage/IModelStorage.sol";
import {IBidStorage} from "../src/interfaces/storage/IBidStorage.sol";
import {IMarketplaceStorage} from "../src/interfaces/storage/IMarketplaceStorage.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";
import {IStatsStorage} from "../src/interfaces/storage/IStatsStorage.sol";
import {IDelegationStorage} from "../src/interfaces/storage/IDelegationStorage.sol";

/// @notice The selectors cut into the diamond: exactly those of the interfaces (with the interfaces they
///         inherit), grouped as the reference deploy does, never the full facet contracts.
library MarketplaceSelectors {
    function providerRegistry() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](8);
        s_[0] = IProviderRegistry.__ProviderRegistry_init.selector;
        s_[1] = IProviderRegistry.providerSetMinStake.selector;
        s_[2] = IProviderRegistry.providerRegister.selector;
        s_[3] = IProviderRegistry.providerDeregister.selector;
        s_[4] = IProviderStorage.getProvider.selector;
        s_[5] = IProviderStorage.getProviderMinimumStake.selector;
        s_[6] = IProviderStorage.getActiveProviders.selector;
        s_[7] = IProviderStorage.getIsProviderActive.selector;
    }

    function modelRegistry() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](10);
        s_[0] = IModelRegistry.__ModelRegistry_init.selector;
        s_[1] = IModelRegistry.modelSetMinStake.selector;
        s_[2] = IModelRegistry.modelRegister.selector;
        s_[3] = IModelRegistry.modelDeregister.selector;
        s_[4] = IModelRegistry.getModelId.selector;
        s_[5] = IModelStorage.getModel.selector;
        s_[6] = IModelStorage.getModelIds.selector;
        s_[7] = IModelStorage.getModelMinimumStake.selector;
        s_[8] = IModelStorage.getActiveModelIds.selector;
        s_[9] = IModelStorage.getIsModelActive.selector;
    }

    function marketplace() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](11);
        s_[0] = IMarketplace.__Marketplace_init.selector;
        s_[1] = IMarketplace.setMarketplaceBidFee.selector;
        s_[2] = IMarketplace.setMinMaxBidPricePerSecond.selector;
        s_[3] = IMarketplace.postModelBid.selector;
        s_[4] = IMarketplace.deleteModelBid.selector;
        s_[5] = IMarketplace.withdrawFee.selector;
        s_[6] = IMarketplace.getBidId.selector;
        s_[7] = IMarketplace.getProviderModelId.selector;
        s_[8] = IMarketplaceStorage.getBidFee.selector;
        s_[9] = IMarketplaceStorage.getFeeBalance.selector;
        s_[10] = IMarketplaceStorage.getMinMaxBidPricePerSecond.selector;
    }

    function bidStorage() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](7);
        s_[0] = IBidStorage.getBid.selector;
        s_[1] = IBidStorage.getProviderActiveBids.selector;
        s_[2] = IBidStorage.getModelActiveBids.selector;
        s_[3] = IBidStorage.getProviderBids.selector;
        s_[4] = IBidStorage.getModelBids.selector;
        s_[5] = IBidStorage.getToken.selector;
        s_[6] = IBidStorage.isBidActive.selector;
    }

    function sessionRouter() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](27);
        s_[0] = ISessionRouter.__SessionRouter_init.selector;
        s_[1] = ISessionRouter.setPoolConfig.selector;
        s_[2] = ISessionRouter.setMaxSessionDuration.selector;
        s_[3] = ISessionRouter.openSession.selector;
        s_[4] = ISessionRouter.closeSession.selector;
        s_[5] = ISessionRouter.claimForProvider.selector;
        s_[6] = ISessionRouter.withdrawUserStakes.selector;
        s_[7] = ISessionRouter.getUserStakesOnHold.selector;
        s_[8] = ISessionRouter.getSessionId.selector;
        s_[9] = ISessionRouter.getSessionEnd.selector;
        s_[10] = ISessionRouter.stakeToStipend.selector;
        s_[11] = ISessionRouter.stipendToStake.selector;
        s_[12] = ISessionRouter.getTodaysBudget.selector;
        s_[13] = ISessionRouter.getComputeBalance.selector;
        s_[14] = ISessionRouter.totalMORSupply.selector;
        s_[15] = ISessionRouter.startOfTheDay.selector;
        s_[16] = ISessionStorage.getSession.selector;
        s_[17] = ISessionStorage.getUserSessions.selector;
        s_[18] = ISessionStorage.getProviderSessions.selector;
        s_[19] = ISessionStorage.getModelSessions.selector;
        s_[20] = ISessionStorage.getPools.selector;
        s_[21] = ISessionStorage.getPool.selector;
        s_[22] = ISessionStorage.getFundingAccount.selector;
        s_[23] = ISessionStorage.getTotalSessions.selector;
        s_[24] = ISessionStorage.getProvidersTotalClaimed.selector;
        s_[25] = ISessionStorage.getIsProviderApprovalUsed.selector;
        s_[26] = ISessionStorage.getMaxSessionDuration.selector;
    }

    function statsStorage() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](2);
        s_[0] = IStatsStorage.getProviderModelStats.selector;
        s_[1] = IStatsStorage.getModelStats.selector;
    }

    function delegation() internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](8);
        s_[0] = IDelegation.__Delegation_init.selector;
        s_[1] = IDelegation.setRegistry.selector;
        s_[2] = IDelegation.DELEGATION_RULES_PROVIDER.selector;
        s_[3] = IDelegation.DELEGATION_RULES_MODEL.selector;
        s_[4] = IDelegation.DELEGATION_RULES_MARKETPLACE.selector;
        s_[5] = IDelegation.DELEGATION_RULES_SESSION.selector;
        s_[6] = IDelegationStorage.getRegistry.selector;
        s_[7] = IDelegationStorage.isRightsDelegated.selector;
    }
}

/// @notice Deploys and wires the whole marketplace the way the reference's migration 1 does (one cut with
///         seven Add entries, then every initializer through the diamond, then the parameters). Shared by
///         the deploy script and the tests, so both run exactly the same wiring.
abstract contract DeployMarketplace {
    struct MarketplaceConfig {
        address token; // zero: deploy a MorpheusToken
        address delegateRegistry; // zero: deploy a local DelegateRegistry
        address fundingAccount;
        uint128 maxSessionDuration;
        uint256 bidMinPricePerSecond;
        uint256 bidMaxPricePerSecond;
        uint256 providerMinimumStake;
        uint256 modelMinimumStake;
        uint256 bidFee;
        ISessionStorage.Pool[] pools;
    }

    struct Deployment {
        address diamond;
        address token;
        address delegateRegistry;
        address multicall3;
        address providerRegistryFacet;
        address modelRegistryFacet;
        address marketplaceFacet;
        address sessionRouterFacet;
        address delegationFacet;
    }

    /// @dev The pools of every reference config: payoutStart 2024-02-08 12:00 UTC, daily decrease,
    ///      indexes 0-3 at 3456 MOR/day and index 4 at 576 MOR/day. Index 3 is the compute pool.
    function _defaultPools() internal pure returns (ISessionStorage.Pool[] memory pools_) {
        pools_ = new ISessionStorage.Pool[](5);
        for (uint256 i = 0; i < 4; i++) {
            pools_[i] = ISessionStorage.Pool(3456 ether, 592558728240000000, 1707393600, 1 days);
        }
        pools_[4] = ISessionStorage.Pool(576 ether, 98759788040000000, 1707393600, 1 days);
    }

    function _deployMarketplace(MarketplaceConfig memory cfg_) internal returns (Deployment memory d_) {
        d_.token = cfg_.token == address(0) ? address(new MorpheusToken()) : cfg_.token;
        d_.delegateRegistry = cfg_.delegateRegistry == address(0) ? address(new DelegateRegistry()) : cfg_.delegateRegistry;
        d_.multicall3 = address(new Multicall3());

        LumerinDiamond diamond_ = new LumerinDiamond();
        diamond_.__LumerinDiamond_init();
        d_.diamond = address(diamond_);

        d_.providerRegistryFacet = address(new ProviderRegistry());
        d_.modelRegistryFacet = address(new ModelRegistry());
        d_.marketplaceFacet = address(new Marketplace());
        d_.sessionRouterFacet = address(new SessionRouter());
        d_.delegationFacet = address(new Delegation());

        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](7);
        cut_[0] = _add(d_.providerRegistryFacet, MarketplaceSelectors.providerRegistry());
        cut_[1] = _add(d_.modelRegistryFacet, MarketplaceSelectors.modelRegistry());
        cut_[2] = _add(d_.marketplaceFacet, MarketplaceSelectors.marketplace());
        cut_[3] = _add(d_.marketplaceFacet, MarketplaceSelectors.bidStorage());
        cut_[4] = _add(d_.sessionRouterFacet, MarketplaceSelectors.sessionRouter());
        cut_[5] = _add(d_.sessionRouterFacet, MarketplaceSelectors.statsStorage());
        cut_[6] = _add(d_.delegationFacet, MarketplaceSelectors.delegation());
        diamond_.diamondCut(cut_);

        IProviderRegistry(d_.diamond).__ProviderRegistry_init();
        IModelRegistry(d_.diamond).__ModelRegistry_init();
        IMarketplace(d_.diamond).__Marketplace_init(d_.token, cfg_.bidMinPricePerSecond, cfg_.bidMaxPricePerSecond);
        ISessionRouter(d_.diamond).__SessionRouter_init(cfg_.fundingAccount, cfg_.maxSessionDuration, cfg_.pools);
        IDelegation(d_.diamond).__Delegation_init(d_.delegateRegistry);

        IProviderRegistry(d_.diamond).providerSetMinStake(cfg_.providerMinimumStake);
        IModelRegistry(d_.diamond).modelSetMinStake(cfg_.modelMinimumStake);
        IMarketplace(d_.diamond).setMarketplaceBidFee(cfg_.bidFee);
    }

    function _add(address facet_, bytes4[] memory selectors_) private pure returns (LumerinDiamond.Facet memory) {
        return LumerinDiamond.Facet(facet_, LumerinDiamond.FacetAction.Add, selectors_);
    }
}
