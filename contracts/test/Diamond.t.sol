// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Vm} from "./utils/Vm.sol";
import {LumerinDiamond} from "../src/diamond/LumerinDiamond.sol";
import {LibDiamondAccess} from "../src/diamond/utils/LibDiamondAccess.sol";
import {SessionRouter} from "../src/diamond/facets/SessionRouter.sol";
import {IProviderRegistry} from "../src/interfaces/facets/IProviderRegistry.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";

/// @dev Two small facets with the same selectors and different results, to watch Add/Replace/Remove.
interface IPingPong {
    function ping() external view returns (uint256);

    function pong() external view returns (uint256);
}

contract FacetA is IPingPong {
    function ping() external pure returns (uint256) {
        return 1;
    }

    function pong() external pure returns (uint256) {
        return 2;
    }
}

contract FacetB is IPingPong {
    function ping() external pure returns (uint256) {
        return 10;
    }

    function pong() external pure returns (uint256) {
        return 20;
    }
}

/// @dev Targets for the diamondCut initializer (delegatecalled by the diamond).
contract CutInit {
    event InitCalled(address self, uint256 value);

    error InitFailed(uint256 code);

    function initOk(uint256 value_) external {
        emit InitCalled(address(this), value_);
    }

    function initRevertWithData() external pure {
        revert InitFailed(7);
    }

    function initRevertWithString() external pure {
        revert("init says no");
    }

    function initRevertEmpty() external pure {
        revert();
    }
}

/// @notice The diamond itself (contracts.md §1): ownership, initialisation, cuts, loupe, fallback, and the
///         full selector map of §2.1-2.5.
contract DiamondTest is MarketplaceTestBase {
    event DiamondCut(LumerinDiamond.Facet[] facets, address initFacet, bytes initData);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Initialized(bytes32 storageSlot);
    event InitCalled(address self, uint256 value);

    FacetA internal facetA;
    FacetB internal facetB;
    CutInit internal cutInit;

    // Expected selector map (filled by _expectedSelectors()).
    bytes4[] internal expSelectors;
    address[] internal expFacets;
    string[] internal expNames;

    function setUp() public override {
        super.setUp();
        facetA = new FacetA();
        facetB = new FacetB();
        cutInit = new CutInit();
    }

    // ---------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------

    function _unauthorized(address account_) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, account_);
    }

    function _errorString(string memory message_) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("Error(string)", message_);
    }

    function _sels(bytes4 a_) internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](1);
        s_[0] = a_;
    }

    function _sels(bytes4 a_, bytes4 b_) internal pure returns (bytes4[] memory s_) {
        s_ = new bytes4[](2);
        s_[0] = a_;
        s_[1] = b_;
    }

    function _cut(address facet_, LumerinDiamond.FacetAction action_, bytes4[] memory selectors_)
        internal
        pure
        returns (LumerinDiamond.Facet[] memory cut_)
    {
        cut_ = new LumerinDiamond.Facet[](1);
        cut_[0] = LumerinDiamond.Facet(facet_, action_, selectors_);
    }

    function _addPingPong(address facet_) internal {
        diamond.diamondCut(
            _cut(facet_, LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector, IPingPong.pong.selector))
        );
    }

    function _contains(address[] memory list_, address item_) internal pure returns (bool) {
        for (uint256 i = 0; i < list_.length; i++) {
            if (list_[i] == item_) return true;
        }
        return false;
    }

    function _containsSel(bytes4[] memory list_, bytes4 item_) internal pure returns (bool) {
        for (uint256 i = 0; i < list_.length; i++) {
            if (list_[i] == item_) return true;
        }
        return false;
    }

    function _assertSelEq(bytes4 a_, bytes4 b_, string memory message_) internal pure {
        assertEq(uint256(uint32(a_)), uint256(uint32(b_)), message_);
    }

    /// @dev Low-level call through the diamond; asserts it reverts with "Diamond: selector is not registered".
    function _assertNotRegistered(bytes memory calldata_, string memory name_) internal {
        (bool ok_, bytes memory ret_) = d.diamond.call(calldata_);
        assertFalse(ok_, name_);
        assertEq(ret_, _errorString("Diamond: selector is not registered"), name_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Ownership
    // ---------------------------------------------------------------------------------------------------

    function test_owner_isTheTestContract() public view {
        assertEq(diamond.owner(), address(this));
        assertEq(diamond.owner(), owner);
    }

    function test_transferOwnership_movesEveryOwnerOnlyPath() public {
        vm.expectEmit(true, true, false, true, d.diamond);
        emit OwnershipTransferred(address(this), stranger);
        diamond.transferOwnership(stranger);
        assertEq(diamond.owner(), stranger);

        // The old owner lost the diamond's and the facets' owner-only functions.
        vm.expectRevert(_unauthorized(address(this)));
        providerRegistry.providerSetMinStake(1 ether);
        vm.expectRevert(_unauthorized(address(this)));
        diamond.transferOwnership(address(this));
        vm.expectRevert(_unauthorized(address(this)));
        diamond.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector)));

        // The new owner has them.
        vm.prank(stranger);
        providerRegistry.providerSetMinStake(1 ether);
        assertEq(providerRegistry.getProviderMinimumStake(), 1 ether);
        vm.prank(stranger);
        diamond.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector)));
        assertEq(IPingPong(d.diamond).ping(), 1);

        vm.expectEmit(true, true, false, true, d.diamond);
        emit OwnershipTransferred(stranger, address(this));
        vm.prank(stranger);
        diamond.transferOwnership(address(this));
        assertEq(diamond.owner(), address(this));
    }

    function test_transferOwnership_revertsZeroAddress() public {
        vm.expectRevert(bytes("DiamondOwnable: zero address owner"));
        diamond.transferOwnership(address(0));
        assertEq(diamond.owner(), address(this));
    }

    function test_transferOwnership_revertsForStranger() public {
        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        diamond.transferOwnership(stranger);
        assertEq(diamond.owner(), address(this));
    }

    function test_renounceOwnership() public {
        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        diamond.renounceOwnership();
        assertEq(diamond.owner(), address(this));

        vm.expectEmit(true, true, false, true, d.diamond);
        emit OwnershipTransferred(address(this), address(0));
        diamond.renounceOwnership();
        assertEq(diamond.owner(), address(0));

        // Nobody is the owner any more, not even the former one.
        vm.expectRevert(_unauthorized(address(this)));
        diamond.transferOwnership(address(this));
        vm.expectRevert(_unauthorized(address(this)));
        diamond.renounceOwnership();
        vm.expectRevert(_unauthorized(address(this)));
        providerRegistry.providerSetMinStake(1);
        vm.expectRevert(_unauthorized(address(this)));
        diamond.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector)));
        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        diamond.transferOwnership(stranger);
        assertEq(diamond.owner(), address(0));
    }

    // ---------------------------------------------------------------------------------------------------
    // __LumerinDiamond_init (D7)
    // ---------------------------------------------------------------------------------------------------

    function test_init_D7_secondCallReverts() public {
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        diamond.__LumerinDiamond_init();
        assertEq(diamond.owner(), address(this));
    }

    function test_init_D7_strangerRevertsOnDeployedDiamond() public {
        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        diamond.__LumerinDiamond_init();
        assertEq(diamond.owner(), address(this));
    }

    function test_init_D7_freshDiamondOnlyDeployerOnce() public {
        LumerinDiamond fresh_ = new LumerinDiamond();
        assertEq(fresh_.owner(), address(0), "no owner before init");

        // Before init nobody owns it, not even the deployer.
        vm.expectRevert(_unauthorized(address(this)));
        fresh_.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector)));

        // D7: a non-deployer cannot front-run the initialisation.
        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        fresh_.__LumerinDiamond_init();
        assertEq(fresh_.owner(), address(0));

        // Emits OwnershipTransferred(0, deployer) and Initialized(DIAMOND_OWNABLE_STORAGE_SLOT) (order unspecified).
        vm.recordLogs();
        fresh_.__LumerinDiamond_init();
        assertEq(fresh_.owner(), address(this));
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        assertEq(logs_.length, 2);
        bool ownership_;
        bool initialized_;
        for (uint256 i = 0; i < logs_.length; i++) {
            assertEq(logs_[i].emitter, address(fresh_));
            if (logs_[i].topics[0] == OwnershipTransferred.selector) {
                assertEq(logs_[i].topics[1], bytes32(0), "previous owner 0");
                assertEq(logs_[i].topics[2], bytes32(uint256(uint160(address(this)))), "new owner = deployer");
                ownership_ = true;
            } else if (logs_[i].topics[0] == Initialized.selector) {
                assertEq(abi.decode(logs_[i].data, (bytes32)), keccak256("diamond.standard.diamond.ownable.storage"));
                initialized_ = true;
            }
        }
        assertTrue(ownership_ && initialized_, "both events");

        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        fresh_.__LumerinDiamond_init();

        // Even after giving the ownership away, the deployer cannot re-initialise to take it back.
        fresh_.transferOwnership(stranger);
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        fresh_.__LumerinDiamond_init();
        assertEq(fresh_.owner(), stranger);
    }

    function test_init_D7_deployerIsWhoeverDeployed() public {
        vm.prank(stranger);
        LumerinDiamond fresh_ = new LumerinDiamond();

        vm.expectRevert(_unauthorized(address(this)));
        fresh_.__LumerinDiamond_init();

        vm.prank(stranger);
        fresh_.__LumerinDiamond_init();
        assertEq(fresh_.owner(), stranger);
    }

    // ---------------------------------------------------------------------------------------------------
    // diamondCut: access control and require strings
    // ---------------------------------------------------------------------------------------------------

    function test_diamondCut_revertsForStranger() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));

        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        diamond.diamondCut(cut_);

        vm.expectRevert(_unauthorized(stranger));
        vm.prank(stranger);
        diamond.diamondCut(cut_, address(0), "");

        // The provider (or any delegatee) is no better than a stranger.
        vm.expectRevert(_unauthorized(provider));
        vm.prank(provider);
        diamond.diamondCut(cut_, address(cutInit), abi.encodeCall(CutInit.initOk, (1)));

        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(0));
    }

    function test_diamondCut_revertsZeroFacet() public {
        vm.expectRevert(bytes("Diamond: facet cannot be zero address"));
        diamond.diamondCut(_cut(address(0), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector)));

        bytes4[] memory existing_ = _sels(IProviderRegistry.providerRegister.selector);
        vm.expectRevert(bytes("Diamond: facet cannot be zero address"));
        diamond.diamondCut(_cut(address(0), LumerinDiamond.FacetAction.Replace, existing_));
    }

    function test_diamondCut_revertsNonContractFacet() public {
        vm.expectRevert(bytes("Diamond: facet is not a contract"));
        diamond.diamondCut(_cut(stranger, LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector)));

        bytes4[] memory existing_ = _sels(IProviderRegistry.providerRegister.selector);
        vm.expectRevert(bytes("Diamond: facet is not a contract"));
        diamond.diamondCut(_cut(stranger, LumerinDiamond.FacetAction.Replace, existing_));
    }

    function test_diamondCut_revertsNoSelectors() public {
        bytes4[] memory none_ = new bytes4[](0);
        vm.expectRevert(bytes("Diamond: no selectors provided"));
        diamond.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Add, none_));
        vm.expectRevert(bytes("Diamond: no selectors provided"));
        diamond.diamondCut(_cut(d.providerRegistryFacet, LumerinDiamond.FacetAction.Replace, none_));
        vm.expectRevert(bytes("Diamond: no selectors provided"));
        diamond.diamondCut(_cut(d.providerRegistryFacet, LumerinDiamond.FacetAction.Remove, none_));
    }

    function test_diamondCut_revertsSelectorAlreadyAdded() public {
        // A selector of another facet...
        vm.expectRevert(bytes("Diamond: selector already added"));
        diamond.diamondCut(
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IProviderRegistry.providerRegister.selector))
        );
        // ...the same facet again...
        vm.expectRevert(bytes("Diamond: selector already added"));
        diamond.diamondCut(
            _cut(d.providerRegistryFacet, LumerinDiamond.FacetAction.Add, _sels(IProviderRegistry.providerRegister.selector))
        );
        // ...or twice in the same entry.
        vm.expectRevert(bytes("Diamond: selector already added"));
        diamond.diamondCut(
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector, IPingPong.ping.selector))
        );
        assertEq(diamond.facetAddress(IProviderRegistry.providerRegister.selector), d.providerRegistryFacet);
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(0), "the whole cut rolled back");
    }

    function test_diamondCut_revertsRemoveFromAnotherFacet() public {
        vm.expectRevert(bytes("Diamond: selector from another facet"));
        diamond.diamondCut(
            _cut(d.modelRegistryFacet, LumerinDiamond.FacetAction.Remove, _sels(IProviderRegistry.providerRegister.selector))
        );
        // An unknown selector is "from another facet" too.
        vm.expectRevert(bytes("Diamond: selector from another facet"));
        diamond.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Remove, _sels(IPingPong.ping.selector)));
        assertEq(diamond.facetAddress(IProviderRegistry.providerRegister.selector), d.providerRegistryFacet);
    }

    function test_diamondCut_revertsReplaceToTheSameFacet() public {
        vm.expectRevert(bytes("Diamond: cannot replace to the same facet"));
        diamond.diamondCut(
            _cut(d.providerRegistryFacet, LumerinDiamond.FacetAction.Replace, _sels(IProviderRegistry.providerRegister.selector))
        );
    }

    function test_diamondCut_revertsReplaceUnknownSelector() public {
        vm.expectRevert(bytes("Diamond: no facet found for selector"));
        diamond.diamondCut(_cut(address(facetA), LumerinDiamond.FacetAction.Replace, _sels(IPingPong.ping.selector)));
    }

    function test_diamondCut_revertsInitWithoutCode() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));
        vm.expectRevert(bytes("Diamond: init_ address has no code"));
        diamond.diamondCut(cut_, stranger, abi.encodeCall(CutInit.initOk, (1)));
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(0), "rolled back");
    }

    function test_diamondCut_initRevertWithoutDataReverts() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));
        vm.expectRevert(bytes("Diamond: initialization function reverted"));
        diamond.diamondCut(cut_, address(cutInit), abi.encodeCall(CutInit.initRevertEmpty, ()));

        // Data matching no function of the init contract (no fallback) also reverts without data.
        vm.expectRevert(bytes("Diamond: initialization function reverted"));
        diamond.diamondCut(cut_, address(cutInit), hex"deadbeef");
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(0), "rolled back");
    }

    function test_diamondCut_initRevertWithDataBubbles() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));
        vm.expectRevert(abi.encodeWithSelector(CutInit.InitFailed.selector, 7));
        diamond.diamondCut(cut_, address(cutInit), abi.encodeCall(CutInit.initRevertWithData, ()));

        vm.expectRevert(bytes("init says no"));
        diamond.diamondCut(cut_, address(cutInit), abi.encodeCall(CutInit.initRevertWithString, ()));
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(0), "rolled back");
    }

    function test_diamondCut_initIsDelegatecalled() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));
        bytes memory data_ = abi.encodeCall(CutInit.initOk, (42));

        vm.expectEmit(false, false, false, true, d.diamond);
        emit DiamondCut(cut_, address(cutInit), data_);
        vm.expectEmit(false, false, false, true, d.diamond);
        emit InitCalled(d.diamond, 42); // address(this) inside the init is the diamond
        diamond.diamondCut(cut_, address(cutInit), data_);

        assertEq(IPingPong(d.diamond).ping(), 1);
    }

    function test_diamondCut_zeroInitSkipsData() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));
        vm.recordLogs();
        diamond.diamondCut(cut_, address(0), hex"deadbeef");
        assertEq(vm.getRecordedLogs().length, 1, "DiamondCut only");
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(facetA));
    }

    // ---------------------------------------------------------------------------------------------------
    // diamondCut: effects through the loupe, and the event
    // ---------------------------------------------------------------------------------------------------

    function test_diamondCut_addReplaceRemoveThroughTheLoupe() public {
        uint256 facetsBefore_ = diamond.facetAddresses().length;
        assertEq(facetsBefore_, 5);

        // Add: both selectors to A.
        _addPingPong(address(facetA));
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(facetA));
        assertEq(diamond.facetAddress(IPingPong.pong.selector), address(facetA));
        bytes4[] memory selsA_ = diamond.facetFunctionSelectors(address(facetA));
        assertEq(selsA_.length, 2);
        _assertSelEq(selsA_[0], IPingPong.ping.selector, "A[0]");
        _assertSelEq(selsA_[1], IPingPong.pong.selector, "A[1]");
        address[] memory addrs_ = diamond.facetAddresses();
        assertEq(addrs_.length, facetsBefore_ + 1);
        assertEq(addrs_[addrs_.length - 1], address(facetA));
        assertEq(IPingPong(d.diamond).ping(), 1);
        assertEq(IPingPong(d.diamond).pong(), 2);

        LumerinDiamond.FacetInfo[] memory infos_ = diamond.facets();
        assertEq(infos_.length, facetsBefore_ + 1);
        assertEq(infos_[infos_.length - 1].facetAddress, address(facetA));
        assertEq(infos_[infos_.length - 1].functionSelectors.length, 2);

        // Replace ping: A keeps pong only, B appears with ping.
        diamond.diamondCut(_cut(address(facetB), LumerinDiamond.FacetAction.Replace, _sels(IPingPong.ping.selector)));
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(facetB));
        assertEq(diamond.facetAddress(IPingPong.pong.selector), address(facetA));
        assertEq(IPingPong(d.diamond).ping(), 10, "B's code runs");
        assertEq(IPingPong(d.diamond).pong(), 2, "A's code runs");
        selsA_ = diamond.facetFunctionSelectors(address(facetA));
        assertEq(selsA_.length, 1);
        _assertSelEq(selsA_[0], IPingPong.pong.selector, "A keeps pong");
        bytes4[] memory selsB_ = diamond.facetFunctionSelectors(address(facetB));
        assertEq(selsB_.length, 1);
        _assertSelEq(selsB_[0], IPingPong.ping.selector, "B has ping");
        addrs_ = diamond.facetAddresses();
        assertEq(addrs_.length, facetsBefore_ + 2);
        assertTrue(_contains(addrs_, address(facetA)) && _contains(addrs_, address(facetB)));

        // Replace pong too: A has no selector left and leaves the facet list.
        diamond.diamondCut(_cut(address(facetB), LumerinDiamond.FacetAction.Replace, _sels(IPingPong.pong.selector)));
        assertEq(diamond.facetFunctionSelectors(address(facetA)).length, 0);
        assertEq(diamond.facetFunctionSelectors(address(facetB)).length, 2);
        addrs_ = diamond.facetAddresses();
        assertEq(addrs_.length, facetsBefore_ + 1);
        assertFalse(_contains(addrs_, address(facetA)), "A gone");
        assertEq(IPingPong(d.diamond).pong(), 20);

        // Remove ping: B keeps pong; ping is no longer routed.
        diamond.diamondCut(_cut(address(facetB), LumerinDiamond.FacetAction.Remove, _sels(IPingPong.ping.selector)));
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(0));
        selsB_ = diamond.facetFunctionSelectors(address(facetB));
        assertEq(selsB_.length, 1);
        _assertSelEq(selsB_[0], IPingPong.pong.selector, "B keeps pong");
        _assertNotRegistered(abi.encodeCall(IPingPong.ping, ()), "ping removed");

        // Remove pong: B leaves the list; the diamond is back to the five facets.
        diamond.diamondCut(_cut(address(facetB), LumerinDiamond.FacetAction.Remove, _sels(IPingPong.pong.selector)));
        assertEq(diamond.facetAddress(IPingPong.pong.selector), address(0));
        assertEq(diamond.facetAddresses().length, facetsBefore_);
        assertEq(diamond.facets().length, facetsBefore_);
        assertFalse(_contains(diamond.facetAddresses(), address(facetB)));
        _assertNotRegistered(abi.encodeCall(IPingPong.pong, ()), "pong removed");

        // And it can be added again afterwards.
        _addPingPong(address(facetA));
        assertEq(IPingPong(d.diamond).ping(), 1);
    }

    function test_diamondCut_severalEntriesInOneCut() public {
        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](3);
        cut_[0] = LumerinDiamond.Facet(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector, IPingPong.pong.selector));
        cut_[1] = LumerinDiamond.Facet(address(facetB), LumerinDiamond.FacetAction.Replace, _sels(IPingPong.ping.selector));
        cut_[2] = LumerinDiamond.Facet(address(facetA), LumerinDiamond.FacetAction.Remove, _sels(IPingPong.pong.selector));

        vm.expectEmit(false, false, false, true, d.diamond);
        emit DiamondCut(cut_, address(0), "");
        diamond.diamondCut(cut_);

        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(facetB));
        assertEq(diamond.facetAddress(IPingPong.pong.selector), address(0));
        assertFalse(_contains(diamond.facetAddresses(), address(facetA)));
        assertEq(IPingPong(d.diamond).ping(), 10);
    }

    function test_diamondCut_eventLayout() public {
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector, IPingPong.pong.selector));

        // Both overloads emit DiamondCut(facets, init, data); the 1-arg form as (0, "").
        vm.expectEmit(false, false, false, true, d.diamond);
        emit DiamondCut(cut_, address(0), "");
        diamond.diamondCut(cut_);

        LumerinDiamond.Facet[] memory remove_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Remove, _sels(IPingPong.ping.selector, IPingPong.pong.selector));
        bytes memory data_ = abi.encodeCall(CutInit.initOk, (5));
        vm.recordLogs();
        diamond.diamondCut(remove_, address(cutInit), data_);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        // The first log of the cut is DiamondCut (the init runs after it).
        bytes32 topic_ = keccak256("DiamondCut((address,uint8,bytes4[])[],address,bytes)");
        assertEq(logs_[0].topics[0], topic_, "DiamondCut topic0");
        assertEq(uint256(uint32(bytes4(topic_))), 0x8faa7087, "topic 0x8faa7087...");
        assertEq(uint256(topic_) & 0xffffff, 0xaeb673, "topic ...aeb673");
        assertEq(logs_[0].topics.length, 1, "nothing indexed");
        assertEq(logs_[0].emitter, d.diamond);
        assertEq(logs_[0].data, abi.encode(remove_, address(cutInit), data_), "abi-encoded (facets, init, data)");
        assertEq(logs_.length, 2, "DiamondCut then InitCalled");
    }

    /// @dev The upgrade of the reference's deploy/4: remove every selector of the old SessionRouter facet (read
    ///      through the loupe) and add them to a new one in the same cut; storage survives.
    function test_diamondCut_upgradeSessionRouterKeepsStorage() public {
        (, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        uint128 maxDuration_ = sessionRouter.getMaxSessionDuration();

        bytes4[] memory old_ = diamond.facetFunctionSelectors(d.sessionRouterFacet);
        assertEq(old_.length, 29, "ISessionRouter + ISessionStorage + IStatsStorage");
        address newFacet_ = address(new SessionRouter());

        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](2);
        cut_[0] = LumerinDiamond.Facet(d.sessionRouterFacet, LumerinDiamond.FacetAction.Remove, old_);
        cut_[1] = LumerinDiamond.Facet(newFacet_, LumerinDiamond.FacetAction.Add, old_);
        diamond.diamondCut(cut_);

        assertFalse(_contains(diamond.facetAddresses(), d.sessionRouterFacet), "old facet gone");
        assertEq(diamond.facetFunctionSelectors(newFacet_).length, 29);
        assertEq(diamond.facetAddress(ISessionRouter.openSession.selector), newFacet_);
        assertEq(sessionRouter.getMaxSessionDuration(), maxDuration_, "storage kept");
        assertEq(sessionRouter.getFundingAccount(), funding);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.user, user, "session kept");
        assertTrue(s_.isActive);

        // The new code is live: the session closes through it.
        vm.warp(block.timestamp + 100);
        _closeSession(sessionId_, PROVIDER_KEY);
        assertEq(sessionRouter.getProvidersTotalClaimed(), 100 * PRICE);
    }

    // ---------------------------------------------------------------------------------------------------
    // Fallback
    // ---------------------------------------------------------------------------------------------------

    function test_fallback_revertsForUnknownSelector() public {
        _assertNotRegistered(abi.encodeWithSelector(bytes4(0x12345678)), "unknown selector");
        _assertNotRegistered(abi.encodeCall(IPingPong.ping, ()), "ping not cut in");
        _assertNotRegistered(hex"", "empty calldata");
        _assertNotRegistered(hex"aa", "short calldata");

        vm.expectRevert(bytes("Diamond: selector is not registered"));
        IPingPong(d.diamond).ping();
    }

    function test_fallback_plainEtherTransferReverts() public {
        vm.deal(address(this), 1 ether);
        (bool ok_, bytes memory ret_) = d.diamond.call{value: 1 ether}("");
        assertFalse(ok_, "no receive()");
        assertEq(ret_, _errorString("Diamond: selector is not registered"));
        assertEq(d.diamond.balance, 0);
    }

    function test_fallback_bubblesFacetRevertData() public {
        vm.expectRevert(IProviderRegistry.ProviderNotFound.selector);
        vm.prank(provider);
        providerRegistry.providerDeregister(provider);
    }

    // ---------------------------------------------------------------------------------------------------
    // Native functions and constants
    // ---------------------------------------------------------------------------------------------------

    function test_storageSlotConstants() public {
        assertEq(diamond.DIAMOND_STORAGE_SLOT(), keccak256("diamond.standard.diamond.storage"));
        assertEq(diamond.DIAMOND_OWNABLE_STORAGE_SLOT(), keccak256("diamond.standard.diamond.ownable.storage"));

        // Callable by their §1 selectors.
        (bool ok_, bytes memory ret_) = d.diamond.call(abi.encodeWithSelector(bytes4(0xe828c51f)));
        assertTrue(ok_, "DIAMOND_STORAGE_SLOT()");
        assertEq(abi.decode(ret_, (bytes32)), keccak256("diamond.standard.diamond.storage"));
        (ok_, ret_) = d.diamond.call(abi.encodeWithSelector(bytes4(0x4ac3371e)));
        assertTrue(ok_, "DIAMOND_OWNABLE_STORAGE_SLOT()");
        assertEq(abi.decode(ret_, (bytes32)), keccak256("diamond.standard.diamond.ownable.storage"));
    }

    function test_nativeSelectors() public {
        _assertSelEq(LumerinDiamond.__LumerinDiamond_init.selector, bytes4(0xf81e0afd), "__LumerinDiamond_init");
        _assertSelEq(bytes4(keccak256("diamondCut((address,uint8,bytes4[])[])")), bytes4(0xe57e69c6), "diamondCut/1");
        _assertSelEq(
            bytes4(keccak256("diamondCut((address,uint8,bytes4[])[],address,bytes)")), bytes4(0x1f931c1c), "diamondCut/3"
        );
        _assertSelEq(LumerinDiamond.owner.selector, bytes4(0x8da5cb5b), "owner");
        _assertSelEq(LumerinDiamond.transferOwnership.selector, bytes4(0xf2fde38b), "transferOwnership");
        _assertSelEq(LumerinDiamond.renounceOwnership.selector, bytes4(0x715018a6), "renounceOwnership");
        _assertSelEq(LumerinDiamond.facets.selector, bytes4(0x7a0ed627), "facets");
        _assertSelEq(LumerinDiamond.facetFunctionSelectors.selector, bytes4(0xadfca15e), "facetFunctionSelectors");
        _assertSelEq(LumerinDiamond.facetAddresses.selector, bytes4(0x52ef6b2c), "facetAddresses");
        _assertSelEq(LumerinDiamond.facetAddress.selector, bytes4(0xcdffacc6), "facetAddress");
        _assertSelEq(diamond.DIAMOND_STORAGE_SLOT.selector, bytes4(0xe828c51f), "DIAMOND_STORAGE_SLOT");
        _assertSelEq(diamond.DIAMOND_OWNABLE_STORAGE_SLOT.selector, bytes4(0x4ac3371e), "DIAMOND_OWNABLE_STORAGE_SLOT");

        // Native functions are not facets: the loupe does not list them.
        assertEq(diamond.facetAddress(bytes4(0x8da5cb5b)), address(0), "owner() is native");
        assertEq(diamond.facetAddress(bytes4(0xcdffacc6)), address(0), "facetAddress() is native");
        assertEq(diamond.facetAddress(bytes4(0x1f931c1c)), address(0), "diamondCut is native");

        // Both diamondCut overloads are reachable by their selectors.
        LumerinDiamond.Facet[] memory cut_ =
            _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.ping.selector));
        (bool ok_,) = d.diamond.call(abi.encodeWithSelector(bytes4(0xe57e69c6), cut_));
        assertTrue(ok_, "diamondCut/1 by selector");
        assertEq(diamond.facetAddress(IPingPong.ping.selector), address(facetA));
        cut_ = _cut(address(facetA), LumerinDiamond.FacetAction.Add, _sels(IPingPong.pong.selector));
        (ok_,) = d.diamond.call(abi.encodeWithSelector(bytes4(0x1f931c1c), cut_, address(0), bytes("")));
        assertTrue(ok_, "diamondCut/3 by selector");
        assertEq(diamond.facetAddress(IPingPong.pong.selector), address(facetA));
    }

    // ---------------------------------------------------------------------------------------------------
    // The selector map: every selector of the contracts.md §2.1-2.5 tables, and nothing else.
    // ---------------------------------------------------------------------------------------------------

    function _e(bytes4 selector_, address facet_, string memory name_) internal {
        expSelectors.push(selector_);
        expFacets.push(facet_);
        expNames.push(name_);
    }

    /// @dev Copied from the tables of contracts.md §2.1 (ProviderRegistry), §2.2 (ModelRegistry),
    ///      §2.3 (Marketplace + IBidStorage), §2.4 (Delegation) and §2.5 (SessionRouter + IStatsStorage).
    function _expectedSelectors() internal {
        _e(bytes4(0x5c7ce38b), d.providerRegistryFacet, "__ProviderRegistry_init");
        _e(bytes4(0x0b7f94d6), d.providerRegistryFacet, "providerSetMinStake");
        _e(bytes4(0x365700cb), d.providerRegistryFacet, "providerRegister");
        _e(bytes4(0x2ca36c49), d.providerRegistryFacet, "providerDeregister");
        _e(bytes4(0x55f21eb7), d.providerRegistryFacet, "getProvider");
        _e(bytes4(0x53c029f6), d.providerRegistryFacet, "getProviderMinimumStake");
        _e(bytes4(0xd5472642), d.providerRegistryFacet, "getActiveProviders");
        _e(bytes4(0x63ef175d), d.providerRegistryFacet, "getIsProviderActive");
        _e(bytes4(0xd69bdf30), d.modelRegistryFacet, "__ModelRegistry_init");
        _e(bytes4(0x78998329), d.modelRegistryFacet, "modelSetMinStake");
        _e(bytes4(0x21dea0a0), d.modelRegistryFacet, "modelRegister");
        _e(bytes4(0xd5a245f1), d.modelRegistryFacet, "modelDeregister");
        _e(bytes4(0xbb93d26a), d.modelRegistryFacet, "getModelId");
        _e(bytes4(0x21e7c498), d.modelRegistryFacet, "getModel");
        _e(bytes4(0x08d0aab4), d.modelRegistryFacet, "getModelIds");
        _e(bytes4(0xf647ba3d), d.modelRegistryFacet, "getModelMinimumStake");
        _e(bytes4(0x3839d3dc), d.modelRegistryFacet, "getActiveModelIds");
        _e(bytes4(0xca74b5f3), d.modelRegistryFacet, "getIsModelActive");
        _e(bytes4(0xf9804d0b), d.marketplaceFacet, "__Marketplace_init");
        _e(bytes4(0x849c239c), d.marketplaceFacet, "setMarketplaceBidFee");
        _e(bytes4(0xf748de1c), d.marketplaceFacet, "setMinMaxBidPricePerSecond");
        _e(bytes4(0xede96bb1), d.marketplaceFacet, "postModelBid");
        _e(bytes4(0x8913dcaa), d.marketplaceFacet, "deleteModelBid");
        _e(bytes4(0xfd9be522), d.marketplaceFacet, "withdrawFee");
        _e(bytes4(0x747ddd5b), d.marketplaceFacet, "getBidId");
        _e(bytes4(0x1cc9de8c), d.marketplaceFacet, "getProviderModelId");
        _e(bytes4(0x8dbb4647), d.marketplaceFacet, "getBidFee");
        _e(bytes4(0xd4c30ceb), d.marketplaceFacet, "getFeeBalance");
        _e(bytes4(0x38c8ac62), d.marketplaceFacet, "getMinMaxBidPricePerSecond");
        _e(bytes4(0x91704e1e), d.marketplaceFacet, "getBid");
        _e(bytes4(0xaf5b77ca), d.marketplaceFacet, "getProviderActiveBids");
        _e(bytes4(0x8a683b6e), d.marketplaceFacet, "getModelActiveBids");
        _e(bytes4(0x59d435c4), d.marketplaceFacet, "getProviderBids");
        _e(bytes4(0xfade17b1), d.marketplaceFacet, "getModelBids");
        _e(bytes4(0x21df0da7), d.marketplaceFacet, "getToken");
        _e(bytes4(0x1345df58), d.marketplaceFacet, "isBidActive");
        _e(bytes4(0xe50e4c43), d.delegationFacet, "__Delegation_init");
        _e(bytes4(0xa91ee0dc), d.delegationFacet, "setRegistry");
        _e(bytes4(0x58aeef93), d.delegationFacet, "DELEGATION_RULES_PROVIDER");
        _e(bytes4(0x86878047), d.delegationFacet, "DELEGATION_RULES_MODEL");
        _e(bytes4(0xad34a150), d.delegationFacet, "DELEGATION_RULES_MARKETPLACE");
        _e(bytes4(0xd1b43638), d.delegationFacet, "DELEGATION_RULES_SESSION");
        _e(bytes4(0x5ab1bd53), d.delegationFacet, "getRegistry");
        _e(bytes4(0x54126b8f), d.delegationFacet, "isRightsDelegated");
        _e(bytes4(0xf8ba944b), d.sessionRouterFacet, "__SessionRouter_init");
        _e(bytes4(0xd7178753), d.sessionRouterFacet, "setPoolConfig");
        _e(bytes4(0xe8664577), d.sessionRouterFacet, "setMaxSessionDuration");
        _e(bytes4(0xa85a1782), d.sessionRouterFacet, "openSession");
        _e(bytes4(0x42f77a31), d.sessionRouterFacet, "closeSession");
        _e(bytes4(0xf2e96e8e), d.sessionRouterFacet, "claimForProvider");
        _e(bytes4(0xa98a7c6b), d.sessionRouterFacet, "withdrawUserStakes");
        _e(bytes4(0x967885df), d.sessionRouterFacet, "getUserStakesOnHold");
        _e(bytes4(0x4d689ffd), d.sessionRouterFacet, "getSessionId");
        _e(bytes4(0xb823dc8f), d.sessionRouterFacet, "getSessionEnd");
        _e(bytes4(0xb3cb0d0f), d.sessionRouterFacet, "stakeToStipend");
        _e(bytes4(0xca40d45f), d.sessionRouterFacet, "stipendToStake");
        _e(bytes4(0x40005965), d.sessionRouterFacet, "getTodaysBudget");
        _e(bytes4(0x61ce471a), d.sessionRouterFacet, "getComputeBalance");
        _e(bytes4(0x6d0cfe5a), d.sessionRouterFacet, "totalMORSupply");
        _e(bytes4(0xba26588c), d.sessionRouterFacet, "startOfTheDay");
        _e(bytes4(0x39b240bd), d.sessionRouterFacet, "getSession");
        _e(bytes4(0xeb7764bb), d.sessionRouterFacet, "getUserSessions");
        _e(bytes4(0x87bced7d), d.sessionRouterFacet, "getProviderSessions");
        _e(bytes4(0x1d78a872), d.sessionRouterFacet, "getModelSessions");
        _e(bytes4(0x673a2a1f), d.sessionRouterFacet, "getPools");
        _e(bytes4(0x068bcd8d), d.sessionRouterFacet, "getPool");
        _e(bytes4(0x775c3727), d.sessionRouterFacet, "getFundingAccount");
        _e(bytes4(0x76400935), d.sessionRouterFacet, "getTotalSessions");
        _e(bytes4(0xbdfbbada), d.sessionRouterFacet, "getProvidersTotalClaimed");
        _e(bytes4(0xdb1cf1e2), d.sessionRouterFacet, "getIsProviderApprovalUsed");
        _e(bytes4(0xa9756858), d.sessionRouterFacet, "getMaxSessionDuration");
        _e(bytes4(0x1b26c116), d.sessionRouterFacet, "getProviderModelStats");
        _e(bytes4(0xce535723), d.sessionRouterFacet, "getModelStats");
    }

    function test_selectorMap_everyTableSelectorIsRegisteredToItsFacet() public {
        _expectedSelectors();
        assertEq(expSelectors.length, 73, "73 selectors in the tables");

        for (uint256 i = 0; i < expSelectors.length; i++) {
            address actual_ = diamond.facetAddress(expSelectors[i]);
            assertTrue(actual_ != address(0), string.concat(expNames[i], " is registered"));
            assertEq(actual_, expFacets[i], string.concat(expNames[i], " points to its facet"));
            assertTrue(
                _containsSel(diamond.facetFunctionSelectors(expFacets[i]), expSelectors[i]),
                string.concat(expNames[i], " listed by facetFunctionSelectors")
            );
        }
    }

    function test_selectorMap_nothingElseIsRegistered() public {
        _expectedSelectors();
        uint256[5] memory perFacet_;
        address[5] memory facets_ =
            [d.providerRegistryFacet, d.modelRegistryFacet, d.marketplaceFacet, d.delegationFacet, d.sessionRouterFacet];
        for (uint256 i = 0; i < expFacets.length; i++) {
            for (uint256 j = 0; j < 5; j++) {
                if (expFacets[i] == facets_[j]) perFacet_[j]++;
            }
        }
        assertEq(perFacet_[0], 8, "ProviderRegistry table");
        assertEq(perFacet_[1], 10, "ModelRegistry table");
        assertEq(perFacet_[2], 18, "Marketplace table");
        assertEq(perFacet_[3], 8, "Delegation table");
        assertEq(perFacet_[4], 29, "SessionRouter table");

        // The loupe lists exactly the table's selectors per facet, and exactly these five facets.
        address[] memory addrs_ = diamond.facetAddresses();
        assertEq(addrs_.length, 5);
        LumerinDiamond.FacetInfo[] memory infos_ = diamond.facets();
        assertEq(infos_.length, 5);
        uint256 total_;
        for (uint256 j = 0; j < 5; j++) {
            assertTrue(_contains(addrs_, facets_[j]), "facet listed");
            bytes4[] memory sels_ = diamond.facetFunctionSelectors(facets_[j]);
            assertEq(sels_.length, perFacet_[j], "no extra selector on the facet");
            for (uint256 k = 0; k < sels_.length; k++) {
                assertTrue(_containsSel(expSelectors, sels_[k]), "every registered selector is in the tables");
            }
            total_ += sels_.length;
        }
        for (uint256 j = 0; j < infos_.length; j++) {
            assertEq(
                infos_[j].functionSelectors.length,
                diamond.facetFunctionSelectors(infos_[j].facetAddress).length,
                "facets() agrees with facetFunctionSelectors()"
            );
        }
        assertEq(total_, 73);
    }

    function test_selectorMap_literalsMatchOurInterfaces() public pure {
        _assertSelEq(IProviderRegistry.providerRegister.selector, bytes4(0x365700cb), "providerRegister");
        _assertSelEq(IProviderRegistry.__ProviderRegistry_init.selector, bytes4(0x5c7ce38b), "__ProviderRegistry_init");
        _assertSelEq(ISessionRouter.openSession.selector, bytes4(0xa85a1782), "openSession");
        _assertSelEq(ISessionRouter.closeSession.selector, bytes4(0x42f77a31), "closeSession");
        _assertSelEq(ISessionRouter.__SessionRouter_init.selector, bytes4(0xf8ba944b), "__SessionRouter_init");
        _assertSelEq(ISessionStorage.getSession.selector, bytes4(0x39b240bd), "getSession");
    }

    /// @dev The public constants that are not declared in an interface are not reachable through the diamond.
    function test_selectorMap_nonInterfaceConstantsAreNotRegistered() public {
        string[11] memory names_ = [
            "MIN_SESSION_DURATION()",
            "SIGNATURE_TTL()",
            "COMPUTE_POOL_INDEX()",
            "PROVIDER_REWARD_LIMITER_PERIOD()",
            "PROVIDERS_STORAGE_SLOT()",
            "MODELS_STORAGE_SLOT()",
            "BIDS_STORAGE_SLOT()",
            "MARKET_STORAGE_SLOT()",
            "SESSIONS_STORAGE_SLOT()",
            "STATS_STORAGE_SLOT()",
            "DELEGATION_STORAGE_SLOT()"
        ];
        for (uint256 i = 0; i < names_.length; i++) {
            bytes4 selector_ = bytes4(keccak256(bytes(names_[i])));
            assertEq(diamond.facetAddress(selector_), address(0), names_[i]);
            _assertNotRegistered(abi.encodeWithSelector(selector_), names_[i]);
        }

        // The DELEGATION_RULES_* constants, by contrast, are in IDelegation and are reachable.
        (bool ok_, bytes memory ret_) = d.diamond.call(abi.encodeWithSelector(bytes4(0x58aeef93)));
        assertTrue(ok_, "DELEGATION_RULES_PROVIDER()");
        assertEq(abi.decode(ret_, (bytes32)), keccak256("delegation.rules.provider"));
    }
}
