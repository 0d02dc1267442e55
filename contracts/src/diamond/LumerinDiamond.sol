// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

import {LibDiamondAccess} from "./utils/LibDiamondAccess.sol";

/// @notice The marketplace diamond (EIP-2535): owner-only cuts, the loupe, ownership, and a fallback that
///         delegatecalls the facet registered for each selector. ABI of solarity's OwnableDiamond as used by
///         the reference LumerinDiamond.
contract LumerinDiamond {
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.Bytes32Set;

    bytes32 public constant DIAMOND_STORAGE_SLOT = keccak256("diamond.standard.diamond.storage");
    bytes32 public constant DIAMOND_OWNABLE_STORAGE_SLOT = LibDiamondAccess.DIAMOND_OWNABLE_STORAGE_SLOT;

    enum FacetAction {
        Add,
        Replace,
        Remove
    }

    struct Facet {
        address facetAddress;
        FacetAction action;
        bytes4[] functionSelectors;
    }

    struct FacetInfo {
        address facetAddress;
        bytes4[] functionSelectors;
    }

    struct DStorage {
        mapping(bytes4 => address) selectorToFacet;
        mapping(address => EnumerableSet.Bytes32Set) facetToSelectors;
        EnumerableSet.AddressSet facets;
    }

    event DiamondCut(Facet[] facets, address initFacet, bytes initData);

    /// @dev The deployer is the only account allowed to run __LumerinDiamond_init (the reference lets anyone
    ///      front-run it between deployment and initialisation).
    constructor() {
        LibDiamondAccess.ownableStorage().deployer = msg.sender;
    }

    modifier onlyOwner() {
        LibDiamondAccess.checkOwner();
        _;
    }

    function __LumerinDiamond_init() external {
        if (msg.sender != LibDiamondAccess.ownableStorage().deployer) {
            revert LibDiamondAccess.OwnableUnauthorizedAccount(msg.sender);
        }
        LibDiamondAccess.initialize(DIAMOND_OWNABLE_STORAGE_SLOT);
        LibDiamondAccess.setOwner(msg.sender);
    }

    fallback() external payable {
        address facet_ = _diamondStorage().selectorToFacet[msg.sig];
        require(facet_ != address(0), "Diamond: selector is not registered");

        assembly {
            calldatacopy(0, 0, calldatasize())
            let result := delegatecall(gas(), facet_, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch result
            case 0 {
                revert(0, returndatasize())
            }
            default {
                return(0, returndatasize())
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------
    // Ownership
    // ---------------------------------------------------------------------------------------------------

    function owner() public view returns (address) {
        return LibDiamondAccess.owner();
    }

    function transferOwnership(address newOwner_) external onlyOwner {
        require(newOwner_ != address(0), "DiamondOwnable: zero address owner");
        LibDiamondAccess.setOwner(newOwner_);
    }

    function renounceOwnership() external onlyOwner {
        LibDiamondAccess.setOwner(address(0));
    }

    // ---------------------------------------------------------------------------------------------------
    // Cut
    // ---------------------------------------------------------------------------------------------------

    function diamondCut(Facet[] memory facets_) external onlyOwner {
        _diamondCut(facets_, address(0), "");
    }

    function diamondCut(Facet[] memory facets_, address init_, bytes memory initData_) external onlyOwner {
        _diamondCut(facets_, init_, initData_);
    }

    function _diamondCut(Facet[] memory facets_, address init_, bytes memory initData_) private {
        for (uint256 i = 0; i < facets_.length; i++) {
            Facet memory facet_ = facets_[i];
            require(facet_.functionSelectors.length > 0, "Diamond: no selectors provided");

            if (facet_.action == FacetAction.Add) {
                _addFacet(facet_.facetAddress, facet_.functionSelectors);
            } else if (facet_.action == FacetAction.Replace) {
                _replaceFacet(facet_.facetAddress, facet_.functionSelectors);
            } else {
                _removeFacet(facet_.facetAddress, facet_.functionSelectors);
            }
        }

        emit DiamondCut(facets_, init_, initData_);
        _initializeDiamondCut(init_, initData_);
    }

    function _addFacet(address facet_, bytes4[] memory selectors_) private {
        _requireContract(facet_);
        DStorage storage ds_ = _diamondStorage();
        for (uint256 i = 0; i < selectors_.length; i++) {
            require(ds_.selectorToFacet[selectors_[i]] == address(0), "Diamond: selector already added");
            ds_.selectorToFacet[selectors_[i]] = facet_;
            ds_.facetToSelectors[facet_].add(bytes32(selectors_[i]));
        }
        ds_.facets.add(facet_);
    }

    function _removeFacet(address facet_, bytes4[] memory selectors_) private {
        DStorage storage ds_ = _diamondStorage();
        for (uint256 i = 0; i < selectors_.length; i++) {
            require(ds_.selectorToFacet[selectors_[i]] == facet_, "Diamond: selector from another facet");
            ds_.selectorToFacet[selectors_[i]] = address(0);
            ds_.facetToSelectors[facet_].remove(bytes32(selectors_[i]));
        }
        if (ds_.facetToSelectors[facet_].length() == 0) ds_.facets.remove(facet_);
    }

    function _replaceFacet(address facet_, bytes4[] memory selectors_) private {
        _requireContract(facet_);
        DStorage storage ds_ = _diamondStorage();
        for (uint256 i = 0; i < selectors_.length; i++) {
            address old_ = ds_.selectorToFacet[selectors_[i]];
            require(old_ != facet_, "Diamond: cannot replace to the same facet");
            require(old_ != address(0), "Diamond: no facet found for selector");

            ds_.facetToSelectors[old_].remove(bytes32(selectors_[i]));
            if (ds_.facetToSelectors[old_].length() == 0) ds_.facets.remove(old_);

            ds_.selectorToFacet[selectors_[i]] = facet_;
            ds_.facetToSelectors[facet_].add(bytes32(selectors_[i]));
        }
        ds_.facets.add(facet_);
    }

    function _initializeDiamondCut(address init_, bytes memory initData_) private {
        if (init_ == address(0)) return;
        require(init_.code.length > 0, "Diamond: init_ address has no code");

        (bool success_, bytes memory error_) = init_.delegatecall(initData_);
        if (!success_) {
            require(error_.length > 0, "Diamond: initialization function reverted");
            assembly {
                revert(add(32, error_), mload(error_))
            }
        }
    }

    function _requireContract(address facet_) private view {
        require(facet_ != address(0), "Diamond: facet cannot be zero address");
        require(facet_.code.length > 0, "Diamond: facet is not a contract");
    }

    // ---------------------------------------------------------------------------------------------------
    // Loupe
    // ---------------------------------------------------------------------------------------------------

    function facets() external view returns (FacetInfo[] memory facets_) {
        DStorage storage ds_ = _diamondStorage();
        facets_ = new FacetInfo[](ds_.facets.length());
        for (uint256 i = 0; i < facets_.length; i++) {
            address facet_ = ds_.facets.at(i);
            facets_[i] = FacetInfo({facetAddress: facet_, functionSelectors: facetFunctionSelectors(facet_)});
        }
    }

    function facetFunctionSelectors(address facet_) public view returns (bytes4[] memory selectors_) {
        EnumerableSet.Bytes32Set storage set_ = _diamondStorage().facetToSelectors[facet_];
        selectors_ = new bytes4[](set_.length());
        for (uint256 i = 0; i < selectors_.length; i++) {
            selectors_[i] = bytes4(set_.at(i));
        }
    }

    function facetAddresses() external view returns (address[] memory) {
        return _diamondStorage().facets.values();
    }

    function facetAddress(bytes4 selector_) external view returns (address) {
        return _diamondStorage().selectorToFacet[selector_];
    }

    function _diamondStorage() private pure returns (DStorage storage ds_) {
        bytes32 slot_ = DIAMOND_STORAGE_SLOT;
        assembly {
            ds_.slot := slot_
        }
    }
}
