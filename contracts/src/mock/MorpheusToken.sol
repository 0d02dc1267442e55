// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice MOR-like ERC-20 for local and test chains: 18 decimals, OpenZeppelin 4.9 (so it has
///         increaseAllowance, which the routers call), 42M minted to the deployer, and an open `mint`.
/// @dev Never deploy this on a public chain: anyone can mint.
contract MorpheusToken is ERC20 {
    /// @dev Name (typo included) kept from the reference's test token.
    uint256 public constant INITIAL_SUPPLUY = 42_000_000 ether;

    constructor() ERC20("Morpheus dev", "MOR") {
        _mint(msg.sender, INITIAL_SUPPLUY);
    }

    function mint(address to_, uint256 amount_) external {
        _mint(to_, amount_);
    }
}
